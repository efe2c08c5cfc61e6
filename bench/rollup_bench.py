"""Benchmark: monthly rollups of a synthetic 10,000-GPU fleet, DuckDB vs pandas, side by side.

Not a test. Builds a month of device-hour facts (10,000 GPUs x 744 h = 7.44M rows)
with the real schema, then runs, each in its own process so peak memory is its own:

* duckdb: the production rollup step (``store.rebuild_rollups``: ``sql/rollups/month.sql``, hour, day
  and month periods x fleet, site, cluster, node, GPU model, and from the workload facts namespace, team
  and the per-workload table ``rollup_workload``, with fixed-point
  integer sums on every DuckDB thread, as production runs it: reruns are bit-identical) on the
  database file;
* pandas: the same rollups with ``groupby``, starting from the same DuckDB facts: the facts are
  read into a DataFrame (``.df()``, timed as ``load_seconds``) and grouped (``compute_seconds``).

Both start from the facts in the DuckDB file and end with the rollup rows. The headline ratio is
end to end (pandas load + compute over DuckDB's rollup); the compute-only ratio is reported too.
Target (issue 4): DuckDB under 10 s and 2 GB peak, and at least 10x faster than pandas.
Usage: python bench/rollup_bench.py [--gpus 10000] [--hours 744] [--json bench/results/rollup_bench.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

BENCH_DIR = Path(__file__).resolve().parent
MONTH_START, MONTH_END = datetime(2026, 10, 1), datetime(2026, 11, 1)
SUMS = ["it_kwh", "facility_kwh", "scope1_g", "scope2_location_g", "scope2_market_g", "scope3_embodied_g",
        "scope3_upstream_g", "water_onsite_l", "water_offsite_l", "cfe_kwh"]
DIMENSIONS = ["site", "cluster", "node", "gpu_model"]
WORKLOAD_DIMENSIONS = ["namespace", "team"]  # from fact_workload_hour, as sql/rollups/month.sql does


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def scalar(con: DuckDBPyConnection, sql: str) -> Any:
    """The single value of a query that returns one row."""
    row = con.execute(sql).fetchone()
    assert row is not None, sql
    return row[0]


def build(db: Path, gpus: int, hours: int) -> dict[str, float]:
    from wattfleet.aggregator.store.database import open_store
    con = open_store(db)
    t = time.perf_counter()
    con.execute((BENCH_DIR / "rollup_bench_facts.sql").read_text(), {"gpus": gpus, "hours": hours})
    con.execute((BENCH_DIR / "rollup_bench_workloads.sql").read_text())
    gen_s = time.perf_counter() - t
    rows = scalar(con, "SELECT count(*) FROM fact_device_hour")
    con.close()
    return {"rows": rows, "generate_s": gen_s}


def run_duckdb(db: Path) -> dict[str, float]:
    from wattfleet.aggregator.store.database import open_store, rebuild_rollups
    con = open_store(db)
    t = time.perf_counter()
    rebuild_rollups(con, MONTH_START.date())
    seconds = time.perf_counter() - t
    n = scalar(con, "SELECT (SELECT count(*) FROM rollup) + (SELECT count(*) FROM rollup_workload)")
    total = scalar(con, "SELECT it_kwh FROM rollup WHERE period='month' AND dimension='fleet'")
    return {"seconds": seconds, "rollup_rows": n, "fleet_it_kwh": total}


def run_pandas(db: Path) -> dict[str, float]:
    import duckdb
    import pandas as pd
    t0 = time.perf_counter()
    con = duckdb.connect(str(db), read_only=True)
    cols = ", ".join(["hour_utc", "component", "intensity_filled", "method", *DIMENSIONS, *SUMS])
    df = con.execute(f"SELECT {cols} FROM fact_device_hour").df()
    wcols = ", ".join(["hour_utc", "cluster", "namespace", "workload", "team", "share", "gpu_hours",
                       "filled_intensity_kwh", "it_kwh_measured", *SUMS])
    wf = con.execute(f"SELECT {wcols} FROM fact_workload_hour").df()
    con.close()
    t = time.perf_counter()
    load_seconds = t - t0
    df["gpu"] = (df["component"] == "gpu").astype("int64")
    df["filled_kwh"] = df["facility_kwh"].where(df["intensity_filled"], 0.0)
    df["measured_kwh"] = df["it_kwh"].where(df["method"] == "measured", 0.0)
    sums = SUMS + ["gpu", "filled_kwh", "measured_kwh"]
    # Same algorithm as sql/rollups/month.sql: two groupings of the facts per hour (by node, and by all the
    # small dimensions together), the small dimensions and the fleet from the latter, days and month
    # from the hourly rollups. Rows with a missing key are left out of that dimension (kept in the fleet).
    small = [d for d in DIMENSIONS if d != "node"]
    by_node = df.groupby(["hour_utc", "node"], observed=True)[sums].sum().reset_index()
    combos = df.groupby(["hour_utc", *small], observed=True, dropna=False)[sums].sum().reset_index()
    hourly = [by_node.rename(columns={"node": "key"}).assign(dimension="node"),
              combos.groupby("hour_utc")[sums].sum().reset_index().assign(dimension="fleet", key="all")]
    for dim in small:
        g = combos.groupby(["hour_utc", dim], observed=True)[sums].sum().reset_index()
        hourly.append(g.rename(columns={dim: "key"}).assign(dimension=dim))
    wf = wf.rename(columns={"gpu_hours": "gpu", "filled_intensity_kwh": "filled_kwh",
                            "it_kwh_measured": "measured_kwh"})
    wl = wf.groupby(["hour_utc", "cluster", "namespace", "workload", "team", "share"], observed=True,
                    dropna=False)[sums].sum().reset_index()
    for dim in WORKLOAD_DIMENSIONS:
        g = wl.groupby(["hour_utc", dim], observed=True)[sums].sum().reset_index()
        hourly.append(g.rename(columns={dim: "key"}).assign(dimension=dim))
    hour = pd.concat(hourly, ignore_index=True).rename(columns={"hour_utc": "period_start"})
    parts = [hour.assign(period="hour")]
    for period, unit in (("day", "D"), ("month", "M")):
        h = hour.assign(period_start=hour["period_start"].dt.to_period(unit).dt.start_time)
        parts.append(h.groupby(["period_start", "dimension", "key"])[sums].sum().reset_index().assign(period=period))
    wkeys = ["cluster", "namespace", "workload", "team", "share"]
    for period, unit in (("hour", "h"), ("day", "D"), ("month", "M")):
        w = wl.assign(period_start=wl["hour_utc"].dt.to_period(unit).dt.start_time)
        parts.append(w.groupby(["period_start", *wkeys], dropna=False)[sums].sum().reset_index()
                     .assign(period=period, dimension="workload"))
    out = pd.concat(parts, ignore_index=True)
    compute_seconds = time.perf_counter() - t
    total = out[(out["period"] == "month") & (out["dimension"] == "fleet")]["it_kwh"].iloc[0]
    return {"seconds": load_seconds + compute_seconds, "load_seconds": load_seconds,
            "compute_seconds": compute_seconds, "rollup_rows": len(out), "fleet_it_kwh": float(total)}


def child(engine: str, path: str) -> None:
    result = run_duckdb(Path(path)) if engine == "duckdb" else run_pandas(Path(path))
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=10_000)
    ap.add_argument("--hours", type=int, default=744)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--child", nargs=2, metavar=("ENGINE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    with tempfile.TemporaryDirectory(prefix="wattfleet-rollup-bench-") as tmp:
        db = Path(tmp) / "facts.duckdb"
        info = build(db, args.gpus, args.hours)
        print(f"facts: {info['rows']:,} device-hours ({args.gpus:,} GPUs x {args.hours} h), "
              f"generated in {info['generate_s']:.1f} s")
        results = {}
        for engine in ("duckdb", "pandas"):
            path = db
            proc = subprocess.run([sys.executable, __file__, "--child", engine, str(path)], capture_output=True,
                                  text=True, check=True)
            results[engine] = json.loads(proc.stdout.strip().splitlines()[-1])
    d, p = results["duckdb"], results["pandas"]
    print(f"{'engine':<8} {'rollup s':>9} {'peak MB':>9} {'rows':>9} {'fleet IT kWh':>14}")
    for name, r in results.items():
        print(f"{name:<8} {r['seconds']:>9.2f} {r['peak_rss_mb']:>9.0f} {r['rollup_rows']:>9,} "
              f"{r['fleet_it_kwh']:>14,.1f}")
    speed, mem = p["seconds"] / d["seconds"], p["peak_rss_mb"] / d["peak_rss_mb"]
    compute_speed = p["compute_seconds"] / d["seconds"]
    print(f"pandas: {p['load_seconds']:.2f} s reading the facts into a DataFrame + {p['compute_seconds']:.2f} s "
          f"groupby")
    print(f"pandas/duckdb: time {speed:.1f}x end to end ({compute_speed:.1f}x groupby alone), "
          f"peak memory {mem:.1f}x")
    print(f"targets: duckdb < 10 s: {'yes' if d['seconds'] < 10 else 'NO'}; < 2 GB: "
          f"{'yes' if d['peak_rss_mb'] < 2048 else 'NO'}; >= 10x pandas: {'yes' if speed >= 10 else 'NO'}")
    if abs(d["fleet_it_kwh"] - p["fleet_it_kwh"]) > 1e-6 * abs(p["fleet_it_kwh"]):
        print("WARNING: engines disagree on the fleet total")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"gpus": args.gpus, "hours": args.hours, **info, "results": results,
                                         "pandas_over_duckdb_time": speed,
                                         "pandas_compute_only_over_duckdb_time": compute_speed,
                                         "command": "flock /tmp/wattfleet-bench.lock python bench/rollup_bench.py "
                                                    f"--gpus {args.gpus} --hours {args.hours} --json {args.json}",
                                         "machine": platform.platform(),
                                         "cpus": __import__("os").cpu_count()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
