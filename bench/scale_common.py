"""Shared pieces of the scale benchmark and the fault campaign: stores, facility config, child processes.

Both scripts drive the real servers (Debian Prometheus and VictoriaMetrics)
and the aggregator as a library, each heavy step in its own process so that
its peak memory (``wait4`` rusage) is its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "tests"))   # promserver: the tests' real-Prometheus launcher

from fixtures.agg.vmserver import VictoriaMetricsServer  # noqa: E402
from promserver import PROMTOOL, PrometheusServer  # noqa: E402

SITES = (("dc-ciso", "CISO"), ("dc-bpat", "BPAT"), ("dc-miso", "MISO"))


def grid_dir() -> Path:
    for candidate in (Path("/work/shared/data/grid-eia930-2022"),
                      ROOT.parent / "shared" / "data" / "grid-eia930-2022"):
        if candidate.is_dir():
            return candidate
    raise SystemExit("grid-eia930-2022 data not found (see ../shared/data/README.md)")


def write_facility(path: Path, grid: Path | None = None, grid_files: dict[str, Path] | None = None) -> Path:
    """A facility config for the simulator's three default sites, hourly EIA-930 intensity for 2022."""
    grid = grid or grid_dir()
    grid_files = grid_files or {}
    sites = []
    for name, zone in SITES:
        csv = grid_files.get(zone, grid / f"{zone}.csv")
        sites.append(textwrap.dedent(f"""\
              - name: {name}
                zone: {zone}
                grid: {{source: eia930, path: {csv}, fill: [previous_day_same_hour, linear]}}
                pue: 1.3
                wue_liters_per_kwh: 1.5
                residual_mix_grams_per_kwh: 400
            """))
    path.write_text("version: 1\ndefaults: {upstream_grams_per_kwh: 35}\nsites:\n" + "".join(sites) +
                    "embodied:\n  - {gpu_model: \"*H100*\", kg_co2e: 164, life_years: 4}\n")
    return path


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM of a running process (its peak resident memory so far)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


@dataclass
class ChildResult:
    rc: int
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    cpu_s: float = 0.0  # user + system seconds of the child itself (wait4)

    def json(self) -> dict[str, Any]:
        """The last stdout line, parsed (children report that way)."""
        lines = [ln for ln in self.stdout.splitlines() if ln.startswith("{")]
        if self.rc != 0 or not lines:
            raise RuntimeError(f"child failed rc={self.rc}: {self.stderr[-3000:]}")
        return json.loads(lines[-1])


def run_child(cmd: Sequence[str], timeout: float = 1800, env: dict[str, str] | None = None) -> ChildResult:
    """Run ``cmd``; its own peak RSS comes from wait4, not from the whole process tree."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return ChildResult(proc.returncode, seconds, usage.ru_maxrss / 1024, out.read().decode(errors="replace"),
                           err.read().decode(errors="replace"), usage.ru_utime + usage.ru_stime)


def promtool_import(openmetrics: Path, data_dir: Path) -> ChildResult:
    """Backfill a TSDB; 744h max block duration so a month is parsed in a couple of passes, not 372."""
    data_dir.mkdir(parents=True, exist_ok=True)
    res = run_child([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=744h",
                     str(openmetrics), str(data_dir)])
    if res.rc != 0:
        raise RuntimeError(f"promtool failed: {res.stderr[-2000:]}")
    return res


def prometheus_server() -> PrometheusServer:
    """A Prometheus for backfilled data: import into ``server.dir / "data"`` before ``start()``."""
    return PrometheusServer(scrape_interval="1h", extra_args=["--storage.tsdb.retention.time=100y",
                                                              "--query.max-samples=200000000"])


class VictoriaMetrics(VictoriaMetricsServer):
    """The tests' single-node VictoriaMetrics, data kept in ``data_dir``, plus bulk import and query helpers."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(workdir=data_dir)
        self.data_dir = data_dir

    def argv(self) -> list[str]:
        return [*super().argv(), "-loggerLevel=WARN"]

    def import_file(self, path: Path, chunk_bytes: int = 32 << 20) -> int:
        """POST the exposition file in newline-aligned chunks; VictoriaMetrics reads seconds timestamps too."""
        sent = 0
        with open(path, "rb") as f:
            rest = b""
            while True:
                block = f.read(chunk_bytes)
                if not block and not rest:
                    break
                data = rest + block
                cut = data.rfind(b"\n") + 1 if block else len(data)
                body, rest = data[:cut], data[cut:]
                if body:
                    req = urllib.request.Request(f"{self.url}/api/v1/import/prometheus", data=body, method="POST")
                    with urllib.request.urlopen(req, timeout=600) as r:
                        r.read()
                    sent += len(body)
                if not block:
                    break
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=120).read()
        return sent

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        body = urllib.parse.urlencode({"query": expr, "time": at}).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{self.url}/api/v1/query", data=body), timeout=120) as r:
            return json.load(r)["data"]["result"]
