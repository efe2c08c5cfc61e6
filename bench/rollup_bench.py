"""Benchmark: monthly rollups of a synthetic 10,000-GPU fleet: DuckDB against pandas and Polars, side by side.

Not a test. Builds a month of device-hour facts (10,000 GPUs x 744 h = 7.44M rows)
with the real schema, then runs, each in its own process so peak memory is its own:

* duckdb: the production rollup step (``store.rebuild_rollups``: ``sql/rollups/month.sql``, hour, day
  and month periods x fleet, site, cluster, node, GPU model, namespace, team, with fixed-point
  integer sums on every DuckDB thread, as production runs it: reruns are bit-identical) on the
  database file;
* duckdb_fanout: the same step with the rollup SQL as it was before issue 18
  (``bench/rollup_month_fanout.sql``: every period grouped straight from the hourly sums through a
  CROSS JOIN), side by side with the shipped one; its rows of all four rollup tables must equal the
  shipped ones exactly (EXCEPT ALL both ways, every bit);
* pandas: the same rollups with ``groupby``, loaded the way a pandas expert would: the facts leave
  DuckDB as Arrow (``fetch_arrow_table``) and become a DataFrame with categorical string columns
  (``to_pandas(strings_to_categorical=True)``), grouped with ``observed=True``;
* polars: the same rollups as one lazy query, loaded from DuckDB through Arrow (``.pl()``).

All start from the facts in the DuckDB file and end with the rollup rows; each writes its rows to
Parquet and the parent checks they equal DuckDB's, row for row (relative 1e-9: pandas and Polars sum
floats, DuckDB fixed-point integers). Load (facts out of DuckDB) and compute are timed apart. The two
DuckDB runs also record their CPU time (all DuckDB threads; on a machine shared with other jobs a
steadier comparison of the two SQL versions than wall time).
Usage: python bench/rollup_bench.py [--gpus 10000] [--hours 744] [--engines duckdb,duckdb_fanout]
       [--json bench/results/rollup_bench.json]
Try it small first (``--gpus 1000``, a few seconds); the 10,000-GPU month builds a 0.9 GB file in /tmp.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench_exporter_common import command_line, write_results

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

BENCH_DIR = Path(__file__).resolve().parent
MONTH_START, MONTH_END = datetime(2026, 10, 1), datetime(2026, 11, 1)
SUMS = ["it_kwh", "facility_kwh", "scope1_g", "scope2_location_g", "scope2_market_g", "scope3_embodied_g",
        "scope3_upstream_g", "water_onsite_l", "water_offsite_l", "cfe_kwh"]
DIMENSIONS = ["site", "cluster", "node", "gpu_model", "namespace", "team"]


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
    from wattfleet.aggregator.store.settings import DEFAULT_MEMORY_LIMIT, StoreSettings
    con = open_store(db)
    StoreSettings(memory_limit=DEFAULT_MEMORY_LIMIT).apply(con)  # as `wattfleet aggregate` runs by default
    t, cpu = time.perf_counter(), time.process_time()
    rebuild_rollups(con, MONTH_START.date())
    seconds, cpu_seconds = time.perf_counter() - t, time.process_time() - cpu
    n = scalar(con, "SELECT count(*) FROM rollup")
    total = scalar(con, "SELECT it_kwh FROM rollup WHERE period='month' AND dimension='fleet'")
    # Built too, and not by the dataframe engines: the per-workload rollup (their time is in `seconds`).
    extra = scalar(con, "SELECT count(*) FROM rollup_workload")
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "rollup_rows": n,
            "rollup_workload_rows_also_built": extra, "memory_limit": DEFAULT_MEMORY_LIMIT, "fleet_it_kwh": total}


FANOUT_SQL = BENCH_DIR / "rollup_month_fanout.sql"
ROLLUP_TABLES = ("rollup", "rollup_workload", "rollup_inference", "rollup_inference_prompt")


def run_duckdb_fanout(db: Path) -> dict[str, float]:
    """The pre-issue-18 rollup SQL, run as rebuild_rollups runs the shipped one (one transaction), after the
    shipped one: its rows must equal the shipped rows exactly, table by table."""
    from wattfleet.aggregator.store.database import open_store, transaction
    from wattfleet.aggregator.store.rebuild import set_month
    from wattfleet.aggregator.store.settings import DEFAULT_MEMORY_LIMIT, StoreSettings
    con = open_store(db)
    StoreSettings(memory_limit=DEFAULT_MEMORY_LIMIT).apply(con)
    for table in ROLLUP_TABLES:  # the shipped rows, kept for the comparison
        con.execute(f"CREATE TEMP TABLE shipped_{table} AS SELECT * FROM {table}")
    text = FANOUT_SQL.read_text()
    t, cpu = time.perf_counter(), time.process_time()
    with transaction(con):
        set_month(con, MONTH_START.date())
        con.execute(text)
    seconds, cpu_seconds = time.perf_counter() - t, time.process_time() - cpu
    differing = {table: scalar(con, f"SELECT count(*) FROM (FROM {table} EXCEPT ALL FROM shipped_{table})") +
                 scalar(con, f"SELECT count(*) FROM (FROM shipped_{table} EXCEPT ALL FROM {table})")
                 for table in ROLLUP_TABLES}
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "rollup_rows": scalar(con, "SELECT count(*) FROM rollup"),
            "rollup_workload_rows_also_built": scalar(con, "SELECT count(*) FROM rollup_workload"),
            "memory_limit": DEFAULT_MEMORY_LIMIT, "sql": str(FANOUT_SQL.relative_to(BENCH_DIR.parent)),
            "fleet_it_kwh": scalar(con, "SELECT it_kwh FROM rollup WHERE period='month' AND dimension='fleet'"),
            "rows_differing_by_table": differing, "rows_differing_from_duckdb": sum(differing.values())}


# The device facts with the namespace and team of their workload facts (one job per GPU-hour in this
# synthetic fleet, bench/rollup_bench_workloads.sql): what the dataframe engines group, as the SQL does.
FACTS_VIEW = "bench_device_facts"
FACT_COLUMNS = ", ".join(["hour_utc", "component", "intensity_filled", "method", *DIMENSIONS, *SUMS])
# Extra sums the rollup carries, as each dataframe engine names them before writing its rows.
EXTRA = {"gpu": "gpu_hours", "filled_kwh": "filled_intensity_kwh", "measured_kwh": "it_kwh_measured"}
CHECKED = [*SUMS, *EXTRA.values()]


def run_pandas(db: Path, out: Path) -> dict[str, float]:
    import duckdb
    import pandas as pd
    t0 = time.perf_counter()
    con = duckdb.connect(str(db), read_only=True)
    df = con.sql(f"SELECT {FACT_COLUMNS} FROM {FACTS_VIEW}").to_arrow_table().to_pandas(
        strings_to_categorical=True)
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
    hour = pd.concat(hourly, ignore_index=True).rename(columns={"hour_utc": "period_start"})
    parts = [hour.assign(period="hour")]
    for period, unit in (("day", "D"), ("month", "M")):
        h = hour.assign(period_start=hour["period_start"].dt.to_period(unit).dt.start_time)
        parts.append(h.groupby(["period_start", "dimension", "key"])[sums].sum().reset_index().assign(period=period))
    result = pd.concat(parts, ignore_index=True)
    compute_seconds = time.perf_counter() - t
    total = result[(result["period"] == "month") & (result["dimension"] == "fleet")]["it_kwh"].iloc[0]
    result["key"] = result["key"].astype(str)
    result.rename(columns=EXTRA)[["period", "period_start", "dimension", "key", *CHECKED]].to_parquet(out)
    return {"seconds": load_seconds + compute_seconds, "load_seconds": load_seconds,
            "compute_seconds": compute_seconds, "rollup_rows": len(result), "fleet_it_kwh": float(total)}


def run_polars(db: Path, out: Path) -> dict[str, float]:
    import duckdb
    import polars as pl
    t0 = time.perf_counter()
    con = duckdb.connect(str(db), read_only=True)
    df = con.sql(f"SELECT {FACT_COLUMNS} FROM {FACTS_VIEW}").pl()
    con.close()
    t = time.perf_counter()
    load_seconds = t - t0
    sums = [*SUMS, *EXTRA]
    facts = df.lazy().with_columns(
        gpu=(pl.col("component") == "gpu").cast(pl.Int64),
        filled_kwh=pl.when(pl.col("intensity_filled")).then(pl.col("facility_kwh")).otherwise(0.0),
        measured_kwh=pl.when(pl.col("method") == "measured").then(pl.col("it_kwh")).otherwise(0.0))
    # The same two groupings per hour as sql/rollups/month.sql; the combinations are computed once.
    small = [d for d in DIMENSIONS if d != "node"]
    combos = facts.group_by(["hour_utc", *small]).agg(pl.col(sums).sum()).collect().lazy()
    key = pl.col("key").cast(pl.String)
    hourly = [facts.group_by(["hour_utc", "node"]).agg(pl.col(sums).sum())
              .select("hour_utc", pl.lit("node").alias("dimension"), pl.col("node").alias("key"), *sums),
              combos.group_by("hour_utc").agg(pl.col(sums).sum())
              .select("hour_utc", pl.lit("fleet").alias("dimension"), pl.lit("all").alias("key"), *sums)]
    for dim in small:
        hourly.append(combos.filter(pl.col(dim).is_not_null()).group_by(["hour_utc", dim]).agg(pl.col(sums).sum())
                      .select("hour_utc", pl.lit(dim).alias("dimension"), pl.col(dim).alias("key"), *sums))
    hour = pl.concat(hourly).with_columns(key).rename({"hour_utc": "period_start"}).collect().lazy()
    parts = [hour.with_columns(period=pl.lit("hour"))]
    for period, every in (("day", "1d"), ("month", "1mo")):
        parts.append(hour.with_columns(pl.col("period_start").dt.truncate(every))
                     .group_by(["period_start", "dimension", "key"]).agg(pl.col(sums).sum())
                     .with_columns(period=pl.lit(period)))
    result = pl.concat(parts, how="diagonal").collect()
    compute_seconds = time.perf_counter() - t
    total = result.filter((pl.col("period") == "month") & (pl.col("dimension") == "fleet"))["it_kwh"][0]
    result.rename(EXTRA).select("period", "period_start", "dimension", "key", *CHECKED).write_parquet(out)
    return {"seconds": load_seconds + compute_seconds, "load_seconds": load_seconds,
            "compute_seconds": compute_seconds, "rollup_rows": result.height, "fleet_it_kwh": float(total)}


def write_duckdb_rows(db: Path, out: Path) -> None:
    """DuckDB's rollup rows, in the columns the dataframe engines write, for the equality check."""
    import duckdb
    con = duckdb.connect(str(db), read_only=True)
    cols = ", ".join(["period", "period_start", "dimension", "key", *CHECKED])
    con.execute(f"COPY (SELECT {cols} FROM rollup) TO '{out}' (FORMAT parquet)")
    con.close()


def mismatches(reference: Path, other: Path) -> int:
    """Rows of ``other`` missing from, extra to or differing from ``reference`` (relative 1e-9 per sum)."""
    import duckdb
    differ = " OR ".join(f"NOT (abs(r.{c} - o.{c}) <= 1e-9 * greatest(abs(r.{c}), abs(o.{c})) + 1e-9)"
                         for c in CHECKED)
    con = duckdb.connect()
    row = con.execute(f"SELECT count(*) FROM read_parquet('{reference}') r FULL JOIN read_parquet('{other}') o "
                      "ON r.period = o.period AND r.period_start = CAST(o.period_start AS TIMESTAMP) "
                      f"AND r.dimension = o.dimension AND r.key = o.key WHERE r.key IS NULL OR o.key IS NULL OR "
                      f"{differ}").fetchone()
    assert row is not None
    return int(row[0])


ENGINES = ("duckdb", "duckdb_fanout", "pandas", "polars")
DATAFRAMES = ("pandas", "polars")


def child(engine: str, path: str, out: str) -> None:
    if engine == "duckdb":
        result = run_duckdb(Path(path))
        write_duckdb_rows(Path(path), Path(out))
    elif engine == "duckdb_fanout":
        result = run_duckdb_fanout(Path(path))
    else:
        result = (run_pandas if engine == "pandas" else run_polars)(Path(path), Path(out))
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=10_000)
    ap.add_argument("--hours", type=int, default=744)
    ap.add_argument("--engines", default=",".join(ENGINES),
                    help="comma-separated, from " + ", ".join(ENGINES) + " (duckdb always runs, first)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--child", nargs=3, metavar=("ENGINE", "PATH", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    chosen = set(args.engines.split(","))
    if chosen - set(ENGINES):
        ap.error(f"--engines: unknown {', '.join(sorted(chosen - set(ENGINES)))}")
    engines = [e for e in ENGINES if e == "duckdb" or e in chosen]
    with tempfile.TemporaryDirectory(prefix="wattfleet-rollup-bench-") as tmp:
        db = Path(tmp) / "facts.duckdb"
        info = build(db, args.gpus, args.hours)
        print(f"facts: {info['rows']:,} device-hours ({args.gpus:,} GPUs x {args.hours} h), "
              f"generated in {info['generate_s']:.1f} s")
        results: dict[str, dict[str, Any]] = {}
        for engine in engines:
            # DuckDB rewrites the rollup tables in place: it runs first, its fan-out twin next (checking its
            # rows against DuckDB's there), the dataframes only read the facts.
            proc = subprocess.run([sys.executable, __file__, "--child", engine, str(db), f"{tmp}/{engine}.parquet"],
                                  capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"{engine} failed:\n{proc.stderr}")
            results[engine] = json.loads(proc.stdout.strip().splitlines()[-1])
        for engine in [e for e in engines if e in DATAFRAMES]:
            results[engine]["rows_differing_from_duckdb"] = mismatches(Path(tmp) / "duckdb.parquet",
                                                                       Path(tmp) / f"{engine}.parquet")
    d = results["duckdb"]
    print(f"{'engine':<13} {'total s':>8} {'cpu s':>6} {'load s':>7} {'compute s':>9} {'peak MB':>8} {'rows':>10} "
          f"{'differing':>9} {'x duckdb':>8}")
    ratios = {}
    for name, r in results.items():
        ratios[name] = r["seconds"] / d["seconds"]
        cpu = f"{r['cpu_seconds']:.2f}" if "cpu_seconds" in r else "-"
        print(f"{name:<13} {r['seconds']:>8.2f} {cpu:>6} {r.get('load_seconds', 0):>7.2f} "
              f"{r.get('compute_seconds', r['seconds']):>9.2f} {r['peak_rss_mb']:>8.0f} {r['rollup_rows']:>10,} "
              f"{r.get('rows_differing_from_duckdb', 0):>9} {ratios[name]:>8.2f}")
    bad = [e for e in engines[1:] if results[e]["rows_differing_from_duckdb"] or
           results[e]["rollup_rows"] != d["rollup_rows"]]
    if bad:
        print(f"WARNING: {', '.join(bad)} disagree with DuckDB's rollup rows")
    if args.json:
        argv = ["--gpus", str(args.gpus), "--hours", str(args.hours), "--engines", ",".join(engines),
                "--json", str(args.json)]
        write_results(args.json.stem, {
            "gpus": args.gpus, "hours": args.hours, **info, "results": results,
            "time_over_duckdb": ratios,
            "compute_only_over_duckdb": {e: results[e]["compute_seconds"] / d["seconds"]
                                         for e in engines if e in DATAFRAMES},
            "load_average_at_end": os.getloadavg()}, "flock /tmp/wattfleet-bench.lock " +
            command_line("rollup_bench.py", argv), out_dir=args.json.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
