"""The exporter's endpoint: snapshots, probes, TLS, basic auth, web config errors, CLI."""

from __future__ import annotations

import base64
import gzip
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest

from exporter_fixtures import start_fake_node
from wattfleet.core import catalog
from wattfleet.core.webconfig import WebConfigError, load_web_config
from wattfleet.exporter.cli import add_arguments


def get(url: str, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    return urllib.request.urlopen(req, timeout=5, context=context)


def test_scrape_serves_snapshot_without_touching_hardware(sysfs_root: Path) -> None:
    node = start_fake_node(sysfs_root, interval=60.0, writer_period=0)  # one sample, no more
    try:
        calls = node.nvml.calls
        bodies = {get(node.server.url).read() for _ in range(20)}
        assert len(bodies) == 1                 # the same snapshot every time
        assert node.nvml.calls == calls         # no NVML call during scrapes
        text = bodies.pop().decode()
        assert catalog.GPU_ENERGY.series in text and catalog.CPU_ENERGY.series in text
        assert 'node="node-a"' in text and 'site="site-a"' in text and 'cluster="c1"' in text
    finally:
        node.stop()


def test_gzip_probes_and_404(sysfs_root: Path) -> None:
    node = start_fake_node(sysfs_root, writer_period=0)
    try:
        base = node.server.url.rsplit("/", 1)[0]
        r = get(node.server.url, {"Accept-Encoding": "gzip"})
        assert r.headers["Content-Encoding"] == "gzip"
        assert catalog.BUILD_INFO.series in gzip.decompress(r.read()).decode()
        assert get(base + "/-/healthy").status == 200
        assert get(base + "/-/ready").status == 200
        with pytest.raises(urllib.error.HTTPError) as err:
            get(base + "/nope")
        assert err.value.code == 404
    finally:
        node.stop()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "tls.crt", tmp / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_tls_and_basic_auth(sysfs_root: Path, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    cfg = tmp_path / "web.yml"
    cfg.write_text(f"tls_server_config:\n  cert_file: {cert.name}\n  key_file: {key.name}\n"
                   f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    node = start_fake_node(sysfs_root, web=load_web_config(cfg), writer_period=0)
    try:
        assert node.server.url.startswith("https://")
        ctx = ssl.create_default_context(cafile=str(cert))
        with pytest.raises(urllib.error.HTTPError) as err:
            get(node.server.url, context=ctx)
        assert err.value.code == 401
        bad = base64.b64encode(b"prometheus:wrong").decode()
        with pytest.raises(urllib.error.HTTPError):
            get(node.server.url, {"Authorization": f"Basic {bad}"}, ctx)
        good = base64.b64encode(b"prometheus:s3cret").decode()
        assert get(node.server.url, {"Authorization": f"Basic {good}"}, ctx).status == 200
        plain = node.server.url.replace("https://", "http://")
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            get(plain)
    finally:
        node.stop()


@pytest.mark.parametrize("body, message", [
    ("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n",
     "line 2: tls_server_config.cert_file: file not found"),
    ("tls_server_config:\n  key_file: a.key\n", "line 1: tls_server_config.cert_file: required"),
    ("tls_server_config:\n  certfile: a.crt\n", "line 2: tls_server_config.certfile: unknown field"),
    ("# users\nbasic_auth_users:\n  bob: plaintext\n", "line 3: basic_auth_users.bob: must be a bcrypt hash"),
    ("basic_auth: {}\n", "line 1: basic_auth: unknown field"),
    ("tls_server_config: [\n", "line 2: invalid YAML"),
])
def test_web_config_errors_name_file_and_field(tmp_path: Path, body: str, message: str) -> None:
    cfg = tmp_path / "web.yml"
    cfg.write_text(body)
    with pytest.raises(WebConfigError) as err:
        load_web_config(cfg)
    assert str(err.value).startswith(str(cfg)) and message in str(err.value)


def test_help_documents_every_flag() -> None:
    out = subprocess.run([sys.executable, "-m", "wattfleet", "exporter", "--help"],
                         capture_output=True, text=True, check=True).stdout
    import argparse
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:  # a deprecated spelling, hidden for its last release
            assert all(flag not in out.split() for flag in action.option_strings)
            continue
        for flag in action.option_strings:
            assert flag in out
        assert action.help, f"{action.option_strings} has no help text"


def test_once_prints_one_scrape_with_estimated_cpu(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "wattfleet", "exporter", "--once", "--interval", "0.1",
                           "--sysfs-root", str(tmp_path), "--node", "n1", "--site", "s1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f'{catalog.CPU_ENERGY.series}{{' in proc.stdout and 'method="estimated"' in proc.stdout
    assert 'collector="rapl"' in proc.stdout and "no RAPL zones" in proc.stderr


def test_bad_web_config_exits_with_clear_message(tmp_path: Path) -> None:
    cfg = tmp_path / "web.yml"
    cfg.write_text("nonsense: 1\n")
    proc = subprocess.run([sys.executable, "-m", "wattfleet", "exporter", "--web-config-file", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"{cfg}: line 1: nonsense: unknown field" in proc.stderr


def test_daemon_serves_until_sigterm(sysfs_root: Path) -> None:
    from promserver import free_port
    from wattfleet.sim.fake_powercap import FakePowercap

    FakePowercap(sysfs_root, sockets=1)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "wattfleet", "exporter", "--listen-address", f"127.0.0.1:{port}",
                             "--sysfs-root", str(sysfs_root), "--interval", "0.2", "--disable-collector", "nvml"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        import time
        deadline = time.monotonic() + 30
        while True:
            try:
                body = get(f"http://127.0.0.1:{port}/metrics").read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
        assert 'source="rapl"' in body and 'collector="nvml"' not in body
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
