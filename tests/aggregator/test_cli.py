"""`wattfleet serve`'s exporter-convention flags on real sockets: addresses and the web config."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import bcrypt
import pytest
from cli_process import ipv6_loopback, wattfleet_server

from paths import FACILITY_EXAMPLE


@contextmanager
def serving(tmp_path: Path, *flags: str) -> Iterator[str]:
    """A real `wattfleet serve` process (no database yet: it serves the config); yields its /metrics URL."""
    with wattfleet_server(["serve", "--db", str(tmp_path / "wf.duckdb"), "--config", str(FACILITY_EXAMPLE),
                           "--refresh-seconds", "3600", *flags], r"serving aggregator metrics on (\S+)") as running:
        yield running[0]


def get(url: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_serve_on_the_ipv6_loopback(tmp_path: Path) -> None:
    with serving(tmp_path, "--web.listen-address", "[::1]:0") as url:
        assert url.startswith("http://[::1]:") and get(url) == 200


def test_serve_port_only_listens_on_ipv4_and_ipv6(tmp_path: Path) -> None:
    with serving(tmp_path, "--web.listen-address", ":0", "--log.format", "json") as url:
        port = url.rsplit(":", 1)[1].split("/")[0]
        assert get(f"http://127.0.0.1:{port}/metrics") == 200
        if ipv6_loopback():
            assert get(f"http://[::1]:{port}/metrics") == 200


def test_serve_takes_the_exporters_web_config(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: '{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()}'\n")
    with serving(tmp_path, "--web.listen-address", "127.0.0.1:0", "--web.config.file", str(web)) as url:
        assert get(url) == 401
        assert get(url, ("prometheus", "pw")) == 200


def test_serve_deprecated_listen_address_still_works(tmp_path: Path) -> None:
    with serving(tmp_path, "--listen-address", "127.0.0.1:0") as url:
        assert get(url) == 200


def test_serve_bad_web_config_is_a_usage_error(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("nonsense: 1\n")
    proc = subprocess.run([sys.executable, "-m", "wattfleet", "serve", "--db", str(tmp_path / "wf.duckdb"),
                           "--config", str(FACILITY_EXAMPLE), "--web.config.file", str(web)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "nonsense: unknown field" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "wattfleet", "serve", "--db", str(tmp_path / "wf.duckdb"),
                               "--config", str(FACILITY_EXAMPLE), "--web.listen-address", f"127.0.0.1:{port}"],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
