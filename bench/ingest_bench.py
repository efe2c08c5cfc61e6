"""Benchmark: peak memory and wall time of `wattfleet aggregate` against the store's own answer time.

Not a test. For each SIZE:HOURS (GPUs x hours from 2022-07-01T00:00Z):

1. ``wattfleet simulate --backfill-openmetrics`` (25 nodes x 4 H100 driven by the Alibaba trace, written
   SIZE/100 times under distinct node names, ``--replicas``) imported into a real VictoriaMetrics
   (``/api/v1/import/prometheus``, caches capped at 3 GiB), the file deleted after;
2. ``wattfleet aggregate`` (the shipped CLI, defaults: 24 h pages, 500-node shards, DuckDB memory
   limit 1GB) into a fresh DuckDB, in its own process: peak RSS from ``wait4``, wall time;
3. the floor of any pull: the same requests (node listing, then every query_range of every page and
   shard, recorded from the aggregator's own query builder) sent with bare ``http.client``, bodies read
   and thrown away, sequentially as the aggregator sends them;
4. the floor of storing the same rows in DuckDB: each table the run wrote (staging energy, device-hour
   and workload-hour facts) copied with CREATE TABLE AS at the same memory limit and rolled back.

With ``--preagg SIZE:HOURS`` one more size runs on Prometheus 2.42 (promtool backfill): the hourly-
energy rule group of ``dashboards build`` is evaluated over the history by ``promtool tsdb
create-blocks-from rules`` (its cost recorded), and ``aggregate`` runs raw and ``--pre-aggregated``,
each beside its bare-HTTP floor; stored GPU energy is compared.

Usage: nice -n 10 python bench/ingest_bench.py [--sizes 1000:168,10000:168,10000:744,100000:168]
       [--preagg 1000:168] [--json bench/results/ingest_bench.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from scale_common import (
    BENCH_DIR,
    PROMTOOL,
    ROOT,
    VictoriaMetrics,
    dir_size,
    prometheus_server,
    promtool_import,
    run_child,
    write_facility,
)

BASE_NODES, GPUS_PER_NODE, BASE_GPUS = 25, 4, 100
START = datetime(2022, 7, 1)
WATTFLEET = [sys.executable, "-c", "import sys; from wattfleet.cli import main; sys.exit(main(sys.argv[1:]))"]


class BoundedVictoriaMetrics(VictoriaMetrics):
    """VictoriaMetrics with its caches capped (the machine is shared; its default takes 60% of RAM)."""

    def argv(self) -> list[str]:
        return [*super().argv(), "-memory.allowedBytes=3GiB"]


def simulate_cmd(size: int, hours: int, step: str, out: Path) -> list[str]:
    end = START + timedelta(hours=hours)
    return [*WATTFLEET, "simulate", "--backfill-openmetrics", str(out), "--nodes", str(BASE_NODES),
            "--gpus-per-node", str(GPUS_PER_NODE), "--gpu-models", "h100", "--replicas", str(size // BASE_GPUS),
            "--span", f"{hours}h", "--step", step, "--end", end.replace(tzinfo=timezone.utc).isoformat(),
            "--seed", "7"]


def load_vm(vm: BoundedVictoriaMetrics, size: int, hours: int, step: str, work: Path) -> dict[str, Any]:
    """simulate into a file (it spools per family, so no pipe), import it into VictoriaMetrics, delete it."""
    om = work / f"fleet-{size}-{hours}.om"
    res = run_child(simulate_cmd(size, hours, step, om), timeout=7200)
    if res.rc != 0:
        raise RuntimeError(f"simulate failed: {res.stderr[-2000:]}")
    truth = float(res.stdout.split("GPU energy ")[1].split(" kWh")[0])
    started = time.perf_counter()
    sent = vm.import_file(om)
    om.unlink()
    return {"simulate_s": res.seconds, "import_s": time.perf_counter() - started, "bytes": sent,
            "simulate_peak_rss_mb": res.peak_rss_mb, "true_gpu_kwh": truth,
            "command": " ".join(["wattfleet", *simulate_cmd(size, hours, step, om)[3:]])}


def aggregate(url: str, config: Path, db: Path, hours: int, *extra: str) -> dict[str, Any]:
    end = START + timedelta(hours=hours)
    cmd = [*WATTFLEET, "aggregate", "--config", str(config), "--db", str(db), "--prometheus", url,
           "--from", START.isoformat(), "--to", end.isoformat(), "--lookback-hours", "0", "--no-progress",
           "--query-timeout", "600", *extra]
    res = run_child(cmd, timeout=7200)
    if res.rc != 0:
        raise RuntimeError(f"aggregate failed rc={res.rc}: {res.stderr[-3000:]}")
    import duckdb
    con = duckdb.connect(str(db), read_only=True)
    row = con.execute("SELECT sum(joules) FILTER (WHERE component = 'gpu'), count(*) FILTER (WHERE component = "
                      "'gpu'), count(*) FROM stg_energy_hourly").fetchone()
    con.close()
    assert row is not None
    stages = {}
    for line in res.stderr.splitlines():
        if "stage wall times:" in line:
            text = line.split("stage wall times:", 1)[1].strip().strip('"')
            stages = {k: float(v.rstrip("s")) for k, v in (part.split() for part in text.split(", "))}
    return {"command": " ".join(["wattfleet", *cmd[3:]]), "wall_s": res.seconds, "cpu_s": res.cpu_s,
            "peak_rss_mb": res.peak_rss_mb,
            "stage_s": stages, "load_average_after": os.getloadavg(),
            "gpu_joules": row[0], "gpu_hours": row[1], "energy_rows": row[2], "db_bytes": db.stat().st_size,
            "summary": res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""}


def duckdb_write_floor(db: Path, memory_limit: str = "1GB") -> dict[str, Any]:
    """DuckDB's own time to write the rows one run stores (staging and facts), copied from its own tables.

    The floor of any aggregator that keeps these rows in DuckDB, beside the store's floor: each table is
    copied with CREATE TABLE AS (same memory limit, every thread) inside a transaction that is rolled back.
    """
    import duckdb
    con = duckdb.connect(str(db))
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET enable_progress_bar = false")
    out: dict[str, Any] = {"memory_limit": memory_limit, "threads": con.execute(
        "SELECT current_setting('threads')").fetchone()[0], "tables": {}}  # type: ignore[index]
    total = 0.0
    for table in ("stg_energy_hourly", "fact_device_hour", "fact_workload_hour"):
        con.begin()
        started = time.perf_counter()
        con.execute(f"CREATE TABLE floor_copy AS SELECT * FROM {table}")
        seconds = time.perf_counter() - started
        con.rollback()
        rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        out["tables"][table] = {"rows": rows, "seconds": seconds}
        total += seconds
    con.close()
    out["seconds"] = total
    return out


def recorded_requests(url: str, hours: int, pre_aggregated: bool = False) -> list[tuple[str, str, str]]:
    """(method, path, encoded params) of every request one aggregate run sends, from its own code."""
    from wattfleet.aggregator.ingest.prometheus import PrometheusSource
    from wattfleet.aggregator.ingest.store_client import StoreClient

    seen: list[tuple[str, str, str]] = []
    real_get = StoreClient.get

    def get(self: StoreClient, path: str, params: Any) -> Any:
        seen.append(("GET", path, urllib.parse.urlencode(params)))
        return real_get(self, path, params)

    def stream(self: StoreClient, path: str, params: dict[str, Any], new_sink: Any) -> Any:
        seen.append(("POST", path, urllib.parse.urlencode(params)))
        return new_sink()

    StoreClient.get = get  # type: ignore[method-assign]
    StoreClient.stream_matrix = stream  # type: ignore[method-assign]
    source = PrometheusSource(url, pre_aggregated=pre_aggregated)
    page = START
    end = START + timedelta(hours=hours)
    while page < end:
        page_end = min(end, page + source.page_hours * timedelta(hours=1))
        for _ in source.batches(page, page_end):
            pass
        page = page_end
    StoreClient.get = real_get  # type: ignore[method-assign]
    return seen


def bare_http(url: str, requests: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Send the requests one after the other with http.client; read each body whole and drop it."""
    parts = urllib.parse.urlsplit(url)
    total_bytes = 0
    started = time.perf_counter()
    for method, path, query in requests:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=600)
        target = f"{parts.path}/api/v1/{path}"
        if method == "POST":
            conn.request("POST", target, body=query.encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            conn.request("GET", f"{target}?{query}")
        r = conn.getresponse()
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            total_bytes += len(chunk)
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {r.status}")
        conn.close()
    return {"requests": len(requests), "seconds": time.perf_counter() - started, "bytes": total_bytes}


def run_vm_size(size: int, hours: int, step: str, work: Path, config: Path) -> dict[str, Any]:
    print(f"== {size} GPUs x {hours} h (VictoriaMetrics)", flush=True)
    rec: dict[str, Any] = {"gpus": size, "hours": hours, "step": step, "store": "victoriametrics",
                           "device_hours": size * hours}
    vm = BoundedVictoriaMetrics(work / f"vm-{size}-{hours}")
    vm.start()
    try:
        rec["load"] = load_vm(vm, size, hours, step, work)
        print(f"   loaded {rec['load']['bytes'] / 1e9:.1f} GB: simulate {rec['load']['simulate_s']:.0f}s, "
              f"import {rec['load']['import_s']:.0f}s", flush=True)
        rec["vm_data_bytes"] = dir_size(vm.data_dir)
        db = work / f"agg-{size}-{hours}.duckdb"
        rec["aggregate"] = aggregate(vm.url, config, db, hours)
        rec["duckdb_write_floor"] = duckdb_write_floor(db)
        db.unlink()
        shutil.rmtree(work / f"agg-{size}-{hours}.duckdb.tmp", ignore_errors=True)
        truth_j = rec["load"]["true_gpu_kwh"] * 3.6e6
        rec["aggregate"]["gpu_energy_vs_truth"] = rec["aggregate"]["gpu_joules"] / truth_j
        print(f"   aggregate {rec['aggregate']['wall_s']:.0f}s, peak RSS {rec['aggregate']['peak_rss_mb']:.0f} MB",
              flush=True)
        rec["bare_http"] = bare_http(vm.url, recorded_requests(vm.url, hours))
        rec["wall_vs_bare_http"] = rec["aggregate"]["wall_s"] / rec["bare_http"]["seconds"]
        rec["telemetry_vs_bare_http"] = rec["aggregate"]["stage_s"].get("telemetry", 0) / rec["bare_http"]["seconds"]
        rec["wall_vs_both_floors"] = rec["aggregate"]["wall_s"] / (rec["bare_http"]["seconds"]
                                                                   + rec["duckdb_write_floor"]["seconds"])
        print(f"   bare HTTP {rec['bare_http']['seconds']:.0f}s ({rec['bare_http']['requests']} requests): "
              f"{rec['wall_vs_bare_http']:.2f}x", flush=True)
    finally:
        vm.stop()
        shutil.rmtree(vm.data_dir, ignore_errors=True)
    return rec


def run_preagg(size: int, hours: int, step: str, work: Path, config: Path) -> dict[str, Any]:
    """Prometheus: raw vs recorded hourly energy, each beside its bare-HTTP floor."""
    from wattfleet.dashboards.build import HOURLY_ENERGY_FILE, render

    print(f"== pre-aggregation, {size} GPUs x {hours} h (Prometheus)", flush=True)
    rec: dict[str, Any] = {"gpus": size, "hours": hours, "step": step, "store": "prometheus"}
    om = work / f"fleet-{size}.om"
    res = run_child(simulate_cmd(size, hours, step, om))
    if res.rc != 0:
        raise RuntimeError(res.stderr[-2000:])
    rules = work / "wattfleet-hourly-energy.yaml"
    rules.write_text(render()[HOURLY_ENERGY_FILE])
    prom = prometheus_server()
    prom.rule_files = [str(rules)]
    try:
        imp = promtool_import(om, prom.dir / "data")
        om.unlink()
        rec["promtool_import_s"] = imp.seconds
        prom.start(timeout=300)
        out = work / "recorded"
        end = START + timedelta(hours=hours + 1)
        started = time.perf_counter()
        proc = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "rules", f"--url={prom.url}",
                               f"--start={int(START.replace(tzinfo=timezone.utc).timestamp())}",
                               f"--end={int(end.replace(tzinfo=timezone.utc).timestamp())}",
                               f"--output-dir={out}", str(rules)], capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        rec["rules_backfill_s"] = time.perf_counter() - started
        rec["rules_backfill_note"] = ("promtool evaluating the rule group over the whole history through the "
                                      "Prometheus API: the same work Prometheus does live, once an hour")
        prom.stop()
        for block in out.iterdir():
            shutil.copytree(block, prom.dir / "data" / block.name)
        prom.start(timeout=300)
        for mode, extra in (("raw", ()), ("pre_aggregated", ("--pre-aggregated",))):
            db = work / f"preagg-{mode}.duckdb"
            rec[mode] = aggregate(prom.url, config, db, hours, *extra)
            db.unlink()
            rec[mode]["bare_http"] = bare_http(prom.url, recorded_requests(prom.url, hours, mode != "raw"))
            print(f"   {mode}: aggregate {rec[mode]['wall_s']:.1f}s (rss {rec[mode]['peak_rss_mb']:.0f} MB), "
                  f"bare HTTP {rec[mode]['bare_http']['seconds']:.1f}s", flush=True)
        rec["gpu_joules_pre_vs_raw"] = rec["pre_aggregated"]["gpu_joules"] / rec["raw"]["gpu_joules"]
    finally:
        prom.close()
    return rec


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = Path("/proc/meminfo").read_text().split()[1]
    return {"cpus": os.cpu_count(), "cpu": cpu, "mem_gb": round(int(mem) / 1048576, 1),
            "python": platform.python_version(), "kernel": platform.release(),
            "shared": "2 cores shared with other agents' work; run under nice -n 10"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000:168,10000:168,10000:744,100000:168")
    p.add_argument("--preagg", default="1000:168", help="SIZE:HOURS on Prometheus, raw vs pre-aggregated ('' none)")
    p.add_argument("--step", default="30m", help="sample step of the simulated counters (default 30m: the 100,000-GPU "
                                                 "week's file stays near 14 GB; the aggregator's work does not depend "
                                                 "on it, one value per device-hour)")
    p.add_argument("--json", default=str(BENCH_DIR / "results" / "ingest_bench.json"))
    p.add_argument("--workdir", default="/var/tmp")
    args = p.parse_args(argv)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True).stdout.strip())
    result: dict[str, Any] = {
        "benchmark": "ingest_bench", "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "nice -n 10 python bench/ingest_bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": commit + ("+dirty" if dirty else ""), "machine": machine(),
        "base_fleet": f"{BASE_NODES} nodes x {GPUS_PER_NODE} H100 (2 RAPL sockets each), written SIZE/100 times, "
                      "Alibaba hourly trace, seed 7", "runs": []}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wattfleet-ingest-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        config = write_facility(work / "facility.yaml")
        if args.preagg:
            size, hours = (int(x) for x in args.preagg.split(":"))
            result["pre_aggregation"] = run_preagg(size, hours, args.step, work, config)
            out.write_text(json.dumps(result, indent=1) + "\n")
        for spec in [s for s in args.sizes.split(",") if s]:
            size, hours = (int(x) for x in spec.split(":"))
            result["runs"].append(run_vm_size(size, hours, args.step, work, config))
            out.write_text(json.dumps(result, indent=1) + "\n")   # each size kept even if a later one fails
    result["total_s"] = time.perf_counter() - started
    result["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out} in {result['total_s']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
