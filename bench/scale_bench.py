"""Benchmark: a simulated fleet of 100, 1,000 and 10,000 GPUs, backfilled into Prometheus and
VictoriaMetrics, ingested into DuckDB through the aggregator, and reported.

Not a test. For each size:

1. ``wattfleet simulate --backfill-openmetrics``: a base fleet of 25 nodes x 4 GPUs (H100, 3 sites)
   driven by the Alibaba hourly trace, stepped through the real exporter code (fake NVML and RAPL),
   its series written ``size / 100`` times under distinct node names (``--replicas``);
2. ``promtool tsdb create-blocks-from openmetrics`` into a Prometheus TSDB, and the same file
   POSTed to VictoriaMetrics ``/api/v1/import/prometheus``;
3. for each store, in a child process: ``ingest()`` of the span into a fresh DuckDB (hourly
   ``increase()`` per device, facts and rollups), then ``write_report`` for the month.

Recorded: backfill/import time, store size and peak RSS, ingest throughput in device-hours/s
(GPU-hours and GPU+CPU-domain rows), fetch vs write vs rollup time, DuckDB file size, report time,
peak RSS of each child, and GPU energy in DuckDB vs the simulator's ground truth.

The ingest is the shipped one, ``ingest.ingest`` with ``ingest.write_window`` (one set-based insert
per table and hour window), timed as it runs: fetch (``source.fetch``), write (``write_window``) and
rollup (``rebuild_dirty``).

Usage: flock /tmp/wattfleet-bench.lock python bench/scale_bench.py
       [--sizes 100:744,1000:744,10000:168] [--step 15m] [--json bench/results/scale_bench.json]
SIZE:HOURS runs SIZE GPUs for HOURS hours from 2022-07-01T00:00Z.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from scale_common import (
    BENCH_DIR,
    ROOT,
    VictoriaMetrics,
    dir_size,
    peak_rss_mb,
    prometheus_server,
    promtool_import,
    run_child,
    write_facility,
)

BASE_NODES, GPUS_PER_NODE = 25, 4
BASE_GPUS = BASE_NODES * GPUS_PER_NODE
START = datetime(2022, 7, 1)
MONTH = "2022-07"


# --- child: one ingest + report -------------------------------------------------------------
def child_ingest(args: argparse.Namespace) -> int:
    """Ingest [from, to) from one store into a fresh DuckDB, time each stage, then the monthly report."""
    from wattfleet.aggregator.config.load import load_facility
    from wattfleet.aggregator.ingest import run as ing
    from wattfleet.aggregator.ingest.prometheus import PrometheusSource
    from wattfleet.aggregator.outputs.report import write_report
    from wattfleet.aggregator.store.database import open_store

    clock = {"fetch": 0.0, "write": 0.0, "rollup": 0.0}

    def timed(key: str, fn: Any) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                clock[key] += time.perf_counter() - t
        return wrapper

    cfg = load_facility(args.config)
    source = PrometheusSource(args.url, name=args.name, timeout=600)
    source.fetch = timed("fetch", source.fetch)  # type: ignore[method-assign]
    ing.write_window = timed("write", ing.write_window)
    ing.rebuild_dirty = timed("rollup", ing.rebuild_dirty)
    start, end = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end)
    con = open_store(args.db)
    t = time.perf_counter()
    result = ing.ingest(con, cfg, source, start, end, lookback_hours=0, now=end + timedelta(hours=1))
    ingest_s = time.perf_counter() - t
    counts = con.execute(
        "SELECT sum(joules) FILTER (WHERE component = 'gpu'), count(*) FILTER (WHERE component = 'gpu'), "
        "count(*) FROM stg_energy_hourly").fetchone()
    assert counts is not None  # an aggregate without GROUP BY returns one row
    gpu_j, gpu_rows, rows = counts
    it_kwh = ing.totals(con)["it_kwh"]
    con.close()
    out: dict[str, Any] = {"hours": result.windows, "energy_rows": rows, "gpu_hours": gpu_rows,
                           "gpu_joules": gpu_j, "it_kwh": it_kwh, "queries": source.queries_made,
                           "ingest_s": ingest_s, "fetch_s": clock["fetch"], "write_s": clock["write"],
                           "rollup_s": clock["rollup"], "db_bytes": Path(args.db).stat().st_size,
                           "months_rebuilt": [m.isoformat() for m in result.months_rebuilt]}
    if args.report:
        t = time.perf_counter()
        files = write_report(args.db, MONTH, args.report, cfg)
        out["report_s"] = time.perf_counter() - t
        out["report_files"] = len(files)
    print(json.dumps(out))
    return 0


# --- parent ----------------------------------------------------------------------------------
def ingest_in_child(url: str, name: str, config: Path, db: Path, start: datetime, end: datetime,
                    report: Path | None) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "_ingest", "--url", url, "--name", name,
           "--config", str(config), "--db", str(db), "--from", start.isoformat(), "--to", end.isoformat()]
    if report is not None:
        cmd += ["--report", str(report)]
    res = run_child(cmd)
    out = res.json()
    out["child_seconds"] = res.seconds
    out["peak_rss_mb"] = res.peak_rss_mb
    out["gpu_hours_per_s"] = out["gpu_hours"] / out["ingest_s"]
    out["rows_per_s"] = out["energy_rows"] / out["ingest_s"]
    return out


def backfill(size: int, hours: int, step: str, out: Path) -> dict[str, Any]:
    end = START + timedelta(hours=hours)
    cmd = [sys.executable, "-c", "import sys; from wattfleet.cli import main; sys.exit(main(sys.argv[1:]))",
           "simulate", "--backfill-openmetrics", str(out),
           "--nodes", str(BASE_NODES), "--gpus-per-node", str(GPUS_PER_NODE), "--gpu-models", "h100",
           "--replicas", str(size // BASE_GPUS), "--span", f"{hours}h", "--step", step,
           "--end", end.replace(tzinfo=timezone.utc).isoformat(), "--seed", "7"]
    res = run_child(cmd)
    if res.rc != 0:
        raise RuntimeError(f"simulate failed: {res.stderr[-2000:]}")
    m = re.search(r"(\d+) samples, .* GPU energy ([0-9.]+) kWh", res.stdout)
    assert m, res.stdout
    return {"seconds": res.seconds, "peak_rss_mb": res.peak_rss_mb, "samples": int(m.group(1)),
            "bytes": out.stat().st_size, "true_gpu_kwh": float(m.group(2)),
            "command": "wattfleet " + " ".join(cmd[3:])}


def run_size(size: int, hours: int, step: str, work: Path, config: Path) -> dict[str, Any]:
    print(f"== {size} GPUs, {hours} h, step {step}", flush=True)
    om = work / f"fleet-{size}.om"
    rec: dict[str, Any] = {"gpus": size, "nodes": size // GPUS_PER_NODE, "hours": hours, "step": step,
                           "simulated_nodes": BASE_NODES, "replicas": size // BASE_GPUS}
    rec["backfill"] = backfill(size, hours, step, om)
    print(f"   backfill {rec['backfill']['samples']:,} samples, {rec['backfill']['bytes'] / 1e6:.0f} MB "
          f"in {rec['backfill']['seconds']:.0f}s", flush=True)
    start, end = START, START + timedelta(hours=hours)
    truth_j = rec["backfill"]["true_gpu_kwh"] * 3.6e6
    prom = prometheus_server()
    try:
        imp = promtool_import(om, prom.dir / "data")
        rec["prometheus"] = {"import_s": imp.seconds, "import_peak_rss_mb": imp.peak_rss_mb,
                             "tsdb_bytes": dir_size(prom.dir / "data")}
        print(f"   promtool {imp.seconds:.0f}s", flush=True)
        prom.start(timeout=300)
        stores = [("prometheus", prom.url)]
        vm = VictoriaMetrics(work / "vm-data")
        vm.start()
        try:
            t = time.perf_counter()
            vm.import_file(om)
            rec["victoriametrics"] = {"import_s": time.perf_counter() - t}
            print(f"   victoria import {rec['victoriametrics']['import_s']:.0f}s", flush=True)
            om.unlink()
            stores.append(("victoriametrics", vm.url))
            for name, url in stores:
                db = work / f"{name}-{size}.duckdb"
                full = ingest_in_child(url, name, config, db, start, end, work / f"report-{name}-{size}")
                full["gpu_energy_vs_truth"] = full["gpu_joules"] / truth_j
                rec[name]["ingest"] = full
                print(f"   {name}: {full['gpu_hours_per_s']:,.0f} GPU-h/s ({full['ingest_s']:.0f}s: fetch "
                      f"{full['fetch_s']:.1f}s, write {full['write_s']:.1f}s, rollup {full['rollup_s']:.1f}s; db "
                      f"{full['db_bytes'] / 1e6:.0f} MB, rss {full['peak_rss_mb']:.0f} MB, truth ratio "
                      f"{full['gpu_energy_vs_truth']:.6f})", flush=True)
                db.unlink()
                shutil.rmtree(work / f"report-{name}-{size}", ignore_errors=True)
            rec["prometheus"]["server_peak_rss_mb"] = peak_rss_mb(prom.proc.pid) if prom.proc else None
            rec["victoriametrics"]["server_peak_rss_mb"] = peak_rss_mb(vm.proc.pid) if vm.proc else None
            rec["victoriametrics"]["data_bytes"] = dir_size(vm.data_dir)
        finally:
            vm.stop()
            shutil.rmtree(vm.data_dir, ignore_errors=True)
    finally:
        prom.__exit__(None, None, None)
        if om.exists():
            om.unlink()
    return rec


def growth(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Ratios between consecutive sizes, per device-hour where the spans differ."""
    out = {}
    for a, b in zip(runs, runs[1:], strict=False):
        dh_a, dh_b = a["gpus"] * a["hours"], b["gpus"] * b["hours"]
        key = f"{a['gpus']}->{b['gpus']}"
        out[key] = {"gpu_hours_ratio": dh_b / dh_a}
        for store in ("prometheus", "victoriametrics"):
            fa, fb = a[store]["ingest"], b[store]["ingest"]
            out[key][store] = {
                "ingest_s_ratio": fb["ingest_s"] / fa["ingest_s"],
                "throughput_ratio": fb["gpu_hours_per_s"] / fa["gpu_hours_per_s"],
                "rollup_s_ratio": fb["rollup_s"] / fa["rollup_s"],
                "db_bytes_ratio": fb["db_bytes"] / fa["db_bytes"],
                "peak_rss_ratio": fb["peak_rss_mb"] / fa["peak_rss_mb"],
            }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd")
    c = sub.add_parser("_ingest")
    for flag in ("--url", "--name", "--config", "--db", "--from", "--to"):
        c.add_argument(flag, required=True, dest=flag[2:].replace("from", "start").replace("to", "end"))
    c.add_argument("--report")
    p.add_argument("--sizes", default="100:744,1000:744,10000:168")
    p.add_argument("--step", default="15m")
    p.add_argument("--json", default=str(BENCH_DIR / "results" / "scale_bench.json"))
    p.add_argument("--workdir", help="scratch directory (default: a temp dir on the disk)")
    args = p.parse_args(argv)
    if args.cmd == "_ingest":
        return child_ingest(args)
    sizes = [tuple(int(x) for x in s.split(":")) for s in args.sizes.split(",")]
    for size, _ in sizes:
        if size % BASE_GPUS:
            raise SystemExit(f"size {size} must be a multiple of {BASE_GPUS} GPUs")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wattfleet-scale-", dir=args.workdir or "/var/tmp") as tmp:
        work = Path(tmp)
        config = write_facility(work / "facility.yaml")
        runs = [run_size(size, hours, args.step, work, config) for size, hours in sizes]
    result = {"benchmark": "scale_bench", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
              "base_fleet": f"{BASE_NODES} nodes x {GPUS_PER_NODE} H100, sites dc-ciso/dc-bpat/dc-miso, "
                            "Alibaba hourly trace + inference bursts, seed 7",
              "month": MONTH, "step": args.step, "runs": runs, "growth": growth(runs),
              "total_s": time.perf_counter() - started,
              "command": "flock /tmp/wattfleet-bench.lock python bench/scale_bench.py "
                         + " ".join(argv or sys.argv[1:])}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json} in {result['total_s']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
