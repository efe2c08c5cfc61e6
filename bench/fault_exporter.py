"""Fault campaign, exporter and HTTP side: hung NVML, implausible RAPL, hostile clients, hostile files.

Each fault runs the real exporter code (sampler, sensors, HTTP server, web config, state file) over the
fake NVML and fake powercap tree on 127.0.0.1, with every loop bounded in count and time. ``fast=True``
shrinks the counts and durations for the smoke test; the campaign runs the full sizes.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fault_common import measured_child

PY = [sys.executable, "-m", "wattfleet"]
GPU_WATTS = 300.0
# 381 bytes: nine anchors of nine aliases each, 9^9 (387 million) x's once expanded.
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))


def series_values(body: bytes, series: str, **match: str) -> list[float]:
    """Values of one series in an exposition, filtered by label values."""
    from prometheus_client.parser import text_string_to_metric_families
    return [s.value for family in text_string_to_metric_families(body.decode()) for s in family.samples
            if s.name == series and all(s.labels.get(k) == v for k, v in match.items())]


def wait_for(cond: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until ``cond()`` held, polling every 10 ms; None if it never did within ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if cond():
            return time.monotonic() - started
        time.sleep(0.01)
    return None


def http_status(url: str, timeout: float = 5.0, context: ssl.SSLContext | None = None) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


# --- 1. a hung NVML call ------------------------------------------------------------------------------
def hung_nvml(work: Path, fast: bool = False) -> dict[str, Any]:
    """A short hang (0.6 s) and, outside fast mode, a longer one (2 s), each on a fresh exporter."""
    out: dict[str, Any] = {}
    for hung_for in (0.6,) if fast else (0.6, 2.0):
        sysfs = work / f"hang-{hung_for:g}s"
        sysfs.mkdir()
        out[f"{hung_for:g}s"] = hung_nvml_once(sysfs, hung_for)
    return out


def hung_nvml_once(sysfs: Path, hung_for: float) -> dict[str, Any]:
    """One board's NVML calls block for ``hung_for`` s: the collector goes down, the rest keeps sampling."""
    from wattfleet.core import catalog
    from wattfleet.core.http import MetricsServer
    from wattfleet.exporter.sampler import Sampler
    from wattfleet.exporter.sensors.nvml import NvmlSensor
    from wattfleet.exporter.sensors.rapl import RaplSensor
    from wattfleet.sim.fake_nvml import FakeNvml
    from wattfleet.sim.fake_powercap import FakePowercap
    interval, timeout = 0.1, 0.3
    powercap = FakePowercap(sysfs, sockets=1)
    nvml = FakeNvml.with_gpus(2, watts=0.0)   # 0 W until the first sample, so the truth starts at its baseline
    sampler = Sampler([NvmlSensor(nvml), RaplSensor(sysfs)], {"node": "n"}, interval=interval, timeout=timeout)
    server = MetricsServer("127.0.0.1:0", lambda: sampler.snapshot, ready=sampler.readiness)

    def now(metric: catalog.Metric, **match: str) -> list[float]:
        snap = sampler.snapshot
        return series_values(snap.body, metric.series, **match) if snap is not None else []

    powercap.start_writer(0.01)
    sampler.start()
    server.start()
    out: dict[str, Any] = {"interval_s": interval, "collector_timeout_s": timeout, "hung_s": hung_for}
    try:
        wait_for(lambda: now(catalog.COLLECTOR_UP, collector="nvml") == [1.0], 5.0)
        for gpu in nvml.gpus:
            gpu.set_power(GPU_WATTS)
        time.sleep(3 * interval)
        cpu_before = sum(now(catalog.CPU_ENERGY))
        nvml.gpus[0].hang()
        hung_at = time.monotonic()
        out["down_after_s"] = wait_for(lambda: now(catalog.COLLECTOR_UP, collector="nvml") == [0.0], 5.0)
        time.sleep(max(hung_for - (out["down_after_s"] or 0.0), 0.0))
        out["while_hung"] = {
            "collector_up_nvml": now(catalog.COLLECTOR_UP, collector="nvml"),
            "gpu_up": now(catalog.GPU_UP),
            "timeout_errors": sum(now(catalog.COLLECTOR_ERRORS, collector="nvml", reason="timeout")),
            "collector_up_rapl": now(catalog.COLLECTOR_UP, collector="rapl"),
            "cpu_joules_added": sum(now(catalog.CPU_ENERGY)) - cpu_before,
            "ready_status": http_status(server.url_for("/-/ready")),
        }
        nvml.gpus[0].unhang()
        out["hung_measured_s"] = time.monotonic() - hung_at
        out["up_again_after_s"] = wait_for(lambda: now(catalog.GPU_UP) == [1.0, 1.0], 5.0)
        for gpu in nvml.gpus:   # the boards go idle at 0 W, so the last samples catch up with the truth
            gpu.set_power(0.0)
        time.sleep(5 * interval)
        sampler.stop()
        exported = sum(now(catalog.GPU_ENERGY))
        truth = sum(g.true_joules() for g in nvml.gpus)
        out.update({"recovered_joules": sum(now(catalog.ENERGY_RECOVERED, collector="nvml")),
                    "exported_joules": exported, "true_joules": truth, "gap_joules": truth - exported,
                    "hang_joules": 2 * GPU_WATTS * out["hung_measured_s"]})
    finally:
        nvml.gpus[0].unhang()
        sampler.stop()
        server.stop()
        powercap.stop_writer()
    return out


# --- 2. implausible RAPL readings -------------------------------------------------------------------
def rapl_run(sysfs: Path, steps: int, start_uj: int, glitches: dict[int, Callable[[int], int]]) -> dict[str, Any]:
    """``steps`` samples 1 s apart of one RAPL package at 120 W whose counter starts at ``start_uj``;
    ``glitches``: step -> the raw uJ to write instead, given the true one."""
    from wattfleet.core import catalog
    from wattfleet.exporter.sampler import Sampler
    from wattfleet.exporter.sensors.rapl import RaplSensor
    from wattfleet.sim.fake_powercap import FakePowercap
    clock = [1000.0]
    powercap = FakePowercap(sysfs, sockets=1, subdomains=(), start_uj=start_uj, clock=lambda: clock[0])
    sampler = Sampler([RaplSensor(sysfs, max_watts=1000.0)], {"node": "n"}, interval=1.0,
                      clock=lambda: clock[0])
    energy = powercap.zones["intel-rapl:0"].path / "energy_uj"
    for step in range(steps):
        clock[0] += 1.0
        powercap.update()
        if step in glitches:
            energy.write_text(f"{glitches[step](int(energy.read_text()))}\n")
        snap = sampler.sample_once()
    return {"joules": sum(series_values(snap.body, catalog.CPU_ENERGY.series)),
            "implausible_errors": sum(series_values(snap.body, catalog.COLLECTOR_ERRORS.series, collector="rapl",
                                                    reason="implausible_reading")),
            "true_joules": powercap.true_joules("intel-rapl:0")}


def rapl_implausible(work: Path, fast: bool = False) -> dict[str, Any]:
    """One reading 1e15 uJ too high (then back), later one negative energy_uj, against the same run without
    them; once with the counter mid-range (100 kJ, as on a machine up for a while) and once near 0 (fresh boot)."""
    steps = 20 if fast else 120
    jump_at, negative_at = 5, steps // 2   # at step 5 the near-zero counter reads 720 J, under 1000 W x 1 s
    glitches: dict[int, Callable[[int], int]] = {jump_at: lambda raw: raw + 10**15, negative_at: lambda raw: -5}
    out: dict[str, Any] = {"steps": steps, "watts": 120.0, "jump_at_step": jump_at, "negative_at_step": negative_at}
    for case, start_uj in (("counter_mid_range", 100_000_000_000), ("counter_near_zero", 0)):
        clean = rapl_run(work / f"{case}-clean", steps, start_uj, {})
        faulted = rapl_run(work / f"{case}-faulted", steps, start_uj, glitches)
        diff = faulted["joules"] - clean["joules"]
        out[case] = {"start_uj": start_uj, "clean": clean, "faulted": faulted, "faulted_minus_clean_joules": diff,
                     "faulted_minus_clean_seconds_at_120w": diff / 120.0, "totals_equal": diff == 0.0}
    return out


# --- 3. silent TLS client and idle connections --------------------------------------------------------
def self_signed(work: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (openssl command)."""
    cert, key = work / "tls.crt", work / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def scrape_latencies(url: str, context: ssl.SSLContext, count: int) -> tuple[list[float], int]:
    """``count`` scrapes one after the other, a new connection each as Prometheus does on a failure."""
    times, ok = [], 0
    for _ in range(count):
        started = time.perf_counter()
        try:
            ok += http_status(url, timeout=10, context=context) == 200
        except OSError:
            pass
        times.append(time.perf_counter() - started)
    return times, ok


def tls_idle(work: Path, fast: bool = False) -> dict[str, Any]:
    """A silent TLS client plus 300 idle connections on the HTTPS endpoint while scrapes go on."""
    from wattfleet.core.exposition import Snapshot
    from wattfleet.core.http import Limits, MetricsServer
    from wattfleet.core.webconfig import load_web_config
    cert, key = self_signed(work)
    (work / "web-tls.yml").write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    body = b"# TYPE x_total counter\nx_total 1.0\n"
    server = MetricsServer("127.0.0.1:0", lambda: Snapshot(body, time.time()), load_web_config(work / "web-tls.yml"))
    server.start()
    ctx = ssl.create_default_context(cafile=str(cert))
    idle_count, scrapes = (50, 10) if fast else (300, 50)
    before = threading.active_count()
    held: list[socket.socket] = []
    try:
        base, _ = scrape_latencies(server.url, ctx, scrapes)
        held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(idle_count + 1)]
        time.sleep(0.3)
        under, ok = scrape_latencies(server.url, ctx, scrapes)
        threads = threading.active_count() - before
    finally:
        for sock in held:
            sock.close()
        server.stop()
    return {"idle_connections": idle_count, "silent_tls_clients": 1, "scrapes": scrapes, "scrapes_ok": ok,
            "p50_ms_before": statistics.median(base) * 1e3, "p50_ms_under_attack": statistics.median(under) * 1e3,
            "max_ms_under_attack": max(under) * 1e3, "extra_threads": threads, "max_workers": Limits().max_workers}


# --- 4. basic auth -----------------------------------------------------------------------------------
SERVER = """
import sys, time
from wattfleet.core.exposition import Snapshot
from wattfleet.core.http import MetricsServer
from wattfleet.core.webconfig import load_web_config
s = MetricsServer("127.0.0.1:0", lambda: Snapshot(b"x 1\\n", time.time()), load_web_config(sys.argv[1]))
s.start()
print(s.port, flush=True)
time.sleep(float(sys.argv[2]))
"""


def auth_status(port: int, user: str, password: str) -> tuple[int, float]:
    """(status, seconds) of one GET /metrics with these credentials; status 0: the connection dropped."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    started = time.perf_counter()
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Basic {token}"})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException):
        status = 0
    finally:
        conn.close()
    return status, time.perf_counter() - started


def auth_server(work: Path, rounds: int, seconds: float) -> tuple[subprocess.Popen[str], int]:
    """An exporter-style server with one bcrypt user in its own process (so its CPU time is its own)."""
    import bcrypt
    digest = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=rounds)).decode()
    (work / "web-auth.yml").write_text(f"basic_auth_users:\n  prometheus: '{digest}'\n")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(work / "web-auth.yml"), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def auth_timing(port: int, samples: int) -> dict[str, Any]:
    """Median time of a wrong password for a known and an unknown user (spaced out to stay in budget)."""
    known, unknown = [], []
    for _ in range(samples):
        known.append(auth_status(port, "prometheus", "wrong")[1])
        time.sleep(0.5)
        unknown.append(auth_status(port, "nobody", "wrong")[1])
        time.sleep(0.5)
    k, u = statistics.median(known), statistics.median(unknown)
    return {"known_ms": k * 1e3, "unknown_ms": u * 1e3, "unknown_over_known": u / k}


def auth_flood(port: int, pid: int, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads sending wrong passwords for ``seconds``: statuses and the server's CPU seconds."""
    import psutil
    server = psutil.Process(pid)
    cpu_before = sum(server.cpu_times()[:2])
    stop = time.monotonic() + seconds
    statuses: list[int] = []

    def flood() -> None:
        while time.monotonic() < stop:
            statuses.append(auth_status(port, "prometheus", "wrong")[0])

    threads = [threading.Thread(target=flood) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = sum(server.cpu_times()[:2]) - cpu_before
    return {"clients": clients, "seconds": seconds, "requests": len(statuses), "status_401": statuses.count(401),
            "status_429": statuses.count(429), "dropped": statuses.count(0), "server_cpu_s": cpu}


def basic_auth(work: Path, fast: bool = False) -> dict[str, Any]:
    proc, port = auth_server(work, rounds=4 if fast else 10, seconds=30 if fast else 60)
    try:
        out: dict[str, Any] = {"bcrypt_rounds": 4 if fast else 10}
        out["timing"] = auth_timing(port, 1 if fast else 3)
        time.sleep(1.0)
        out["long_password_status"] = auth_status(port, "prometheus", "p" * 100)[0]
        time.sleep(1.0)
        out["flood"] = auth_flood(port, proc.pid, 5 if fast else 20, 0.5 if fast else 2.0)
        time.sleep(1.0)
        out["right_password_after_flood"] = auth_status(port, "prometheus", "s3cret")[0]
    finally:
        proc.kill()
        proc.wait()
    return out


# --- 5. YAML alias bomb -----------------------------------------------------------------------------
def refused_child(cmd: list[str], timeout: float = 60) -> dict[str, Any]:
    """Run a command expected to refuse its input: exit code, last stderr line, seconds, peak RSS."""
    res, peak = measured_child(cmd, timeout=timeout)
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    return {"rc": res.rc, "message": lines[-1][:300] if lines else "", "seconds": res.seconds,
            "peak_rss_mb": peak, "traceback": "Traceback" in res.stderr}


def alias_bomb(work: Path, fast: bool = False) -> dict[str, Any]:
    """The same 381-byte bomb as facility config (aggregate) and as web config (exporter)."""
    bomb = work / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    out: dict[str, Any] = {"bytes": len(ALIAS_BOMB.encode())}
    out["facility_config"] = refused_child(PY + ["aggregate", "--config", str(bomb), "--db", str(work / "bomb.duckdb"),
                                                 "--prometheus", "http://127.0.0.1:9", "--no-progress"])
    sysfs = work / "bomb-sysfs"
    sysfs.mkdir()
    out["web_config"] = refused_child(PY + ["exporter", "--web.config.file", str(bomb), "--sysfs-root", str(sysfs),
                                            "--web.listen-address", "127.0.0.1:0", "--no-collector.nvml"])
    out["baseline_help"] = {"peak_rss_mb": measured_child(PY + ["aggregate", "--help"])[1]}
    for part in ("facility_config", "web_config"):
        out[part]["message"] = out[part]["message"].replace(str(work), "<work>")
    return out


# --- 6. hostile state files ------------------------------------------------------------------------
def exporter_log(err: Any, work: Path) -> list[str]:
    """The exporter's stderr so far, ``work`` shown as <work>, without time stamps and without deprecation
    warnings (a command line with old flag spellings must not hide the line that matters)."""
    err.seek(0)
    text = err.read().decode(errors="replace")
    return [re.sub(r"^ts=\S+ ", "", ln).replace(str(work), "<work>")[:300]
            for ln in text.splitlines() if ln.strip() and "is deprecated" not in ln]


def exporter_with_state(work: Path, state: Path, seconds: float) -> dict[str, Any]:
    """Start the exporter with ``--state-file state`` (current flag spellings). If it exits within ``seconds``:
    its exit code and message. If it serves: its readiness and exported RAPL energy, then SIGTERM, and whether
    ``state`` then holds a state file the exporter wrote."""
    from wattfleet.core import catalog
    sysfs = work / f"sysfs-{state.parent.name}"
    from wattfleet.sim.fake_powercap import FakePowercap
    FakePowercap(sysfs, sockets=1, subdomains=())
    out: dict[str, Any] = {}
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(PY + ["exporter", "--sysfs-root", str(sysfs), "--state-file", str(state),
                                      "--web.listen-address", "127.0.0.1:0", "--no-collector.nvml",
                                      "--interval", "0.2"], stdout=subprocess.DEVNULL, stderr=err)
        try:
            def serving() -> bool:
                return proc.poll() is not None or any("msg=\"serving http" in ln for ln in exporter_log(err, work))
            wait_for(serving, seconds)
            rc = proc.poll()
            if rc is None:
                url = next(re.search(r"serving (http\S+)", ln).group(1)   # type: ignore[union-attr]
                           for ln in exporter_log(err, work) if "msg=\"serving http" in ln)
                time.sleep(0.5)   # a few samples at 0.2 s
                out["ready_status"] = http_status(url.replace("/metrics", "/-/ready"))
                with urllib.request.urlopen(url, timeout=5) as r:
                    out["exported_cpu_joules"] = sum(series_values(r.read(), catalog.CPU_ENERGY.series))
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        lines = exporter_log(err, work)
        err.seek(0)
        out["traceback"] = "Traceback" in err.read().decode(errors="replace")
    out["exit"] = rc if rc is not None else "kept running"
    out["stderr"] = lines[:4]
    # what to quote: the exporter's refusal when it exited, its state-file warning when it kept running
    out["message"] = (lines[-1] if lines else "") if rc is not None else \
        next((ln for ln in lines if "state file" in ln), "")
    if rc is None:
        try:
            saved = json.loads(state.read_text())
            out["state_file_rewritten"] = isinstance(saved, dict) and saved.get("format") == "wattfleet-exporter-state"
        except (OSError, ValueError):
            out["state_file_rewritten"] = False
    return out


def state_files(work: Path, fast: bool = False) -> dict[str, Any]:
    """Deeply nested JSON, a symlink to another file, and a state path whose directory is a file."""
    out: dict[str, Any] = {}
    deep = work / "deep" / "state.json"
    deep.parent.mkdir()
    deep.write_text("[" * 100_000 + "]" * 100_000)
    out["deeply_nested_json"] = exporter_with_state(work, deep, 10.0)
    link_dir = work / "link"
    link_dir.mkdir()
    secret = link_dir / "secret"
    secret.write_text("do not touch\n")
    (link_dir / "state.json").symlink_to(secret)
    out["symlinked_state_file"] = exporter_with_state(work, link_dir / "state.json", 10.0)
    out["symlink_target_untouched"] = secret.read_text() == "do not touch\n"
    not_a_dir = work / "file"
    not_a_dir.mkdir()
    (not_a_dir / "plain").write_text("")
    out["unwritable_state_directory"] = exporter_with_state(work, not_a_dir / "plain" / "state.json", 10.0)
    return out


def run_all(work: Path, fast: bool = False) -> dict[str, Any]:
    """Every exporter-side fault above, each in its own folder under ``work``."""
    steps: dict[str, Callable[[Path, bool], dict[str, Any]]] = {
        "hung_nvml": hung_nvml, "rapl_implausible": rapl_implausible, "tls_idle": tls_idle,
        "basic_auth": basic_auth, "alias_bomb": alias_bomb, "state_files": state_files}
    out: dict[str, Any] = {}
    for name, step in steps.items():
        folder = work / name
        folder.mkdir()
        started = time.perf_counter()
        out[name] = step(folder, fast)
        out[name]["campaign_seconds"] = time.perf_counter() - started
    return out


if __name__ == "__main__":   # a quick look: python bench/fault_exporter.py [--fast]
    with tempfile.TemporaryDirectory(prefix="wattfleet-faults-exporter-") as tmp:
        print(json.dumps(run_all(Path(tmp), "--fast" in sys.argv), indent=1, default=str))
