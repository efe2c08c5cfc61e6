"""`wattfleet exporter`'s command line: exporter-convention flags, their deprecated spellings,
listen addresses on real sockets, log lines and the process_* self-metrics."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_process import ipv6_loopback, wattfleet_server

from wattfleet.cli import build_parser
from wattfleet.exporter import cli as exporter_cli
from wattfleet.sim.fake_powercap import FakePowercap

PROMTOOL = shutil.which("promtool")


def parse(*argv: str) -> argparse.Namespace:
    return build_parser("exporter", every=False).parse_args(["exporter", *argv])


# ---------------------------------------------------------------- flags


def test_exporter_conventions_parse() -> None:
    args = parse("--web.listen-address", "[::1]:9100", "--web.config.file", "web.yml",
                 "--no-collector.nvml", "--no-collector.inference", "--log.level", "debug", "--log.format", "json")
    assert args.listen_address == "[::1]:9100" and args.web_config_file == "web.yml"
    assert args.disable_collector == ["nvml", "inference"]
    assert (args.log_level, args.log_format) == ("debug", "json")
    assert not getattr(args, "deprecated_flags", None)


def test_defaults() -> None:
    args = parse()
    assert args.listen_address == f":{exporter_cli.DEFAULT_PORT}" and args.web_config_file is None
    assert args.disable_collector == [] and (args.log_level, args.log_format) == ("info", "logfmt")


def test_the_last_collector_switch_wins() -> None:
    assert parse("--no-collector.rapl", "--collector.rapl").disable_collector == []
    assert parse("--collector.rapl", "--no-collector.rapl", "--no-collector.rapl").disable_collector == ["rapl"]


def test_deprecated_spellings_still_work_and_say_so() -> None:
    args = parse("--listen-address", "127.0.0.1:9100", "--web-config-file", "w.yml",
                 "--disable-collector", "nvml", "--disable-collector", "host")
    assert args.listen_address == "127.0.0.1:9100" and args.web_config_file == "w.yml"
    assert args.disable_collector == ["nvml", "host"]
    notes = args.deprecated_flags
    assert any("--listen-address" in n and "--web.listen-address" in n for n in notes)
    assert any("--web-config-file" in n and "--web.config.file" in n for n in notes)
    assert any("--disable-collector" in n and "--no-collector.nvml" in n for n in notes)


def test_upper_case_log_levels_are_still_accepted() -> None:
    assert parse("--log.level", "WARNING").log_level == "WARNING"
    args = build_parser("exporter", every=False).parse_args(["--log-level", "DEBUG", "exporter"])
    assert args.log_level == "DEBUG" and args.deprecated_flags


def test_top_level_log_flags_are_kept_when_the_subcommand_has_none() -> None:
    args = build_parser("exporter", every=False).parse_args(["--log.level", "error", "--log.format", "json",
                                                             "exporter"])
    assert (args.log_level, args.log_format) == ("error", "json")


def test_help_hides_the_deprecated_spellings() -> None:
    out = subprocess.run([sys.executable, "-m", "wattfleet", "exporter", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--web.listen-address", "--web.config.file", "--collector.nvml, --no-collector.nvml",
                 "--log.level", "--log.format"):
        assert flag in out
    assert "[--collector.nvml | --no-collector.nvml]" in " ".join(out.split())  # usage names both
    words = set(re.split(r"[\s\[\],]+", out))
    assert not words & {"--listen-address", "--web-config-file", "--disable-collector"}


# ---------------------------------------------------------------- bad arguments: usage, exit 2


@pytest.mark.parametrize("argv, message", [
    (["exporter", "--web.listen-address", "9880"], "must look like HOST:PORT"),
    (["exporter", "--web.listen-address", "::1:9880"], "write an IPv6 address in brackets"),
    (["exporter", "--listen-address", "[::1:9880"], "unclosed '['"),
    (["exporter", "--log.level", "verbose"], "invalid choice"),
    (["exporter", "--log.format", "xml"], "invalid choice"),
    (["exporter", "--disable-collector", "gpu"], "invalid choice"),
    (["serve", "--db", "x", "--config", "y", "--web.listen-address", "localhost"], "must look like HOST:PORT"),
    (["aggregate", "--log.level", "loud"], "invalid choice"),
    (["simulate", "--log.format", "text"], "invalid choice"),
])
def test_bad_arguments_are_usage_errors_not_tracebacks(argv: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "wattfleet", *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "usage: wattfleet" in proc.stderr and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_address_in_use_is_a_clear_error(sysfs_root: Path) -> None:
    FakePowercap(sysfs_root, sockets=1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "wattfleet", "exporter", "--web.listen-address",
                               f"127.0.0.1:{port}", "--sysfs-root", str(sysfs_root), "--no-collector.nvml"],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------- real sockets


@contextmanager
def running_exporter(sysfs_root: Path, *flags: str) -> Iterator[tuple[str, subprocess.Popen[str], str]]:
    """A real `wattfleet exporter` process; yields the URL it logs, the process and that log line."""
    FakePowercap(sysfs_root, sockets=1)
    with wattfleet_server(["exporter", "--sysfs-root", str(sysfs_root), "--interval", "0.2", "--no-collector.nvml",
                           "--no-collector.inference", *flags], r"serving (https?://\S+?/metrics)") as running:
        yield running


def scrape(url: str) -> str:
    deadline = time.monotonic() + 20
    while True:
        try:
            return urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_loopback_address(sysfs_root: Path) -> None:
    with running_exporter(sysfs_root, "--web.listen-address", "[::1]:0") as (url, _, _):
        assert url.startswith("http://[::1]:")
        assert 'source="rapl"' in scrape(url)


def test_port_only_address_listens_on_ipv4_and_ipv6(sysfs_root: Path) -> None:
    with running_exporter(sysfs_root, "--web.listen-address", ":0") as (url, _, _):
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert 'source="rapl"' in scrape(f"http://127.0.0.1:{port}/metrics")
        if ipv6_loopback():
            assert 'source="rapl"' in scrape(f"http://[::1]:{port}/metrics")


def test_deprecation_warning_is_a_log_line(sysfs_root: Path) -> None:
    FakePowercap(sysfs_root, sockets=1)
    proc = subprocess.run([sys.executable, "-m", "wattfleet", "exporter", "--once", "--interval", "0.05",
                           "--sysfs-root", str(sysfs_root), "--disable-collector", "nvml",
                           "--no-collector.inference", "--log.format", "json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    (warning,) = [r for r in records if "deprecated" in r["msg"]]
    assert warning["level"] == "warn" and "--no-collector.nvml" in warning["msg"]
    assert set(warning) >= {"ts", "level", "caller", "msg"}


def test_log_lines_are_logfmt_by_default_and_json_on_request(sysfs_root: Path) -> None:
    with running_exporter(sysfs_root, "--web.listen-address", "127.0.0.1:0") as (url, _, line):
        assert re.fullmatch(r'ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=info caller=cli\.py:\d+ '
                            r'logger=wattfleet\.exporter\.cli msg="serving http://127\.0\.0\.1:\d+/metrics '
                            r'\(interval 0\.2s\)"\n', line), line
    with running_exporter(sysfs_root, "--web.listen-address", "127.0.0.1:0", "--log.format", "json") as (_, _, line):
        record = json.loads(line)
        assert record["level"] == "info" and record["msg"].startswith("serving http://")


# ---------------------------------------------------------------- self-metrics


def test_scrape_carries_process_metrics(sysfs_root: Path) -> None:
    with running_exporter(sysfs_root, "--web.listen-address", "127.0.0.1:0") as (url, _, _):
        body = scrape(url)
    families = {m.group(1) for m in re.finditer(r"^# TYPE (\S+) ", body, re.M)}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds",
            "process_open_fds", "process_max_fds", "process_virtual_memory_bytes"} <= families
    start = re.search(r"^process_start_time_seconds (\S+)$", body, re.M)
    assert start is not None and abs(float(start.group(1)) - time.time()) < 120
    assert len(re.findall(r"^# TYPE process_resident_memory_bytes ", body, re.M)) == 1


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")
def test_promtool_check_metrics_is_clean_on_a_live_cli_scrape(sysfs_root: Path) -> None:
    with running_exporter(sysfs_root, "--web.listen-address", "127.0.0.1:0") as (url, _, _):
        body = scrape(url)
    assert "process_resident_memory_bytes" in body
    proc = subprocess.run([str(PROMTOOL), "check", "metrics"], input=body, capture_output=True, text=True)
    assert proc.stdout + proc.stderr == "" and proc.returncode == 0
