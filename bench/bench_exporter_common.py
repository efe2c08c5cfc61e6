"""Shared plumbing for the exporter benchmarks: processes, scrapes, results.

The benchmarks compare our exporter with the real ``prometheus-node-exporter``
(Debian package) reading the same fake powercap tree, so starting that binary,
scraping over plain HTTP/1.1 with keep-alive off and writing JSON results are
done once here. Nothing in this module is timed against a target itself.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"

# tests/promserver.py starts a real Prometheus; the accuracy benchmark reuses it.
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))


def have_node_exporter() -> bool:
    return Path(NODE_EXPORTER).exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15.0) -> None:
    """Poll ``url`` until it answers 200; fail early when ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def start_node_exporter(sysfs_root: str | os.PathLike[str], port: int,
                        log_path: str | os.PathLike[str] | None = None) -> subprocess.Popen[bytes]:
    """node_exporter with only the RAPL collector, reading ``sysfs_root`` as /sys."""
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [NODE_EXPORTER, "--collector.disable-defaults", "--collector.rapl", f"--path.sysfs={sysfs_root}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics", proc)
    except Exception:
        stop_process(proc)
        raise
    return proc


def node_exporter_version() -> str:
    try:
        out = subprocess.run([NODE_EXPORTER, "--version"], capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).splitlines()[0].strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def stop_process(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def scrape(host: str, port: int, path: str = "/metrics", gzip: bool = False) -> tuple[float, bytes]:
    """One scrape on a fresh connection (keep-alive off); (seconds, body as sent)."""
    headers = {"Connection": "close", "Accept-Encoding": "gzip" if gzip else "identity"}
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        status = response.status
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"GET http://{host}:{port}{path} -> {status}")
    return elapsed, body


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in 0..100 (numpy's default method)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "node_exporter": node_exporter_version()}


def git_commit() -> str:
    """The commit the run measured (``-dirty`` when the working tree had changes), or ``unknown``."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def command_line(script: str, argv: Sequence[str]) -> str:
    """How to reproduce a run: ``python bench/<script> <args>`` from the repository root."""
    return " ".join(["python", f"bench/{script}", *argv])


def write_results(name: str, data: dict[str, Any], command: str,
                  out_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write ``<out_dir>/<name>.json`` (default bench/results/) and return its path."""
    directory = Path(out_dir) if out_dir else RESULTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    payload = {"benchmark": name, "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "command": command, "commit": git_commit(),
               "machine": machine_info(), **data}
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def print_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
