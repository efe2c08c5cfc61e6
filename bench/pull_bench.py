"""Benchmark: the telemetry stage of `wattfleet aggregate` alone (the pull) against the store's own time.

Not a test. ``ingest_bench.py`` times whole runs (grid, telemetry, facts); this isolates the pull, the
part whose floor is the store's: against a running PromQL store that already holds a fleet (for
example the VictoriaMetrics ``ingest_bench.py`` loads), each round, one after the other:

1. the floor: every request the pull sends (``ingest_bench.recorded_requests``, from the aggregator's own
   query builder), sent bare with ``http.client`` and the bodies read and dropped (``bare_http``);
2. the pull: ``PrometheusSource`` + ``write_page`` over the same hours into a fresh DuckDB (the loop of
   ``ingest.run.ingest`` without grid, inference fit and facts), in a child process so that its wall
   time, CPU seconds (user + system, ``wait4``) and peak RSS are its own; the child also reports its
   main thread's CPU (DuckDB's inserts and commits) and the stored rows' GPU energy.

Rounds alternate floor and pull so that both see the same load on a shared machine.

Usage: nice -n 10 python bench/pull_bench.py --url URL [--hours 168] [--rounds 3] [--fleet TEXT]
       [--json bench/results/pull_bench.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from statistics import median
from typing import Any

from ingest_bench import START, bare_http, machine, recorded_requests
from scale_common import BENCH_DIR, ROOT, run_child


def child(url: str, db: str, hours: int) -> None:
    """The pull into ``db``; one JSON line on stdout."""
    from wattfleet.aggregator.ingest.prometheus import PrometheusSource
    from wattfleet.aggregator.ingest.run import page_batches, write_page
    from wattfleet.aggregator.store.connection import open_store

    con = open_store(db)
    source = PrometheusSource(url, timeout=600)
    end = START + timedelta(hours=hours)
    main_cpu = 0.0
    started = time.perf_counter()
    page = START
    while page < end:
        page_end = min(end, page + source.page_hours * timedelta(hours=1))
        thread_started = time.thread_time()
        write_page(con, source.name, page, page_end, page_batches(source, page, page_end))
        main_cpu += time.thread_time() - thread_started
        page = page_end
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    con.execute("SET threads = 1")  # the sum in storage order: the same bits on every run
    joules, gpu_rows, rows = con.execute(
        "SELECT sum(joules) FILTER (WHERE component = 'gpu'), count(*) FILTER (WHERE component = 'gpu'), "
        "count(*) FROM stg_energy_hourly").fetchone() or (None, 0, 0)
    con.close()
    print(json.dumps({"wall_s": wall, "process_cpu_s": usage.ru_utime + usage.ru_stime,
                      "main_thread_cpu_s": main_cpu, "requests": source.queries_made, "gpu_joules": joules,
                      "gpu_rows": gpu_rows, "energy_rows": rows}))


def pull(url: str, hours: int, work: Path) -> dict[str, Any]:
    db = work / "pull.duckdb"
    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    res = run_child([sys.executable, str(Path(__file__).resolve()), "--child", url, str(db), str(hours)],
                    timeout=3600)
    if res.rc != 0:
        raise RuntimeError(f"pull failed rc={res.rc}: {res.stderr[-3000:]}")
    out = res.json()
    out.update({"child_wall_s": res.seconds, "child_cpu_s": res.cpu_s, "peak_rss_mb": res.peak_rss_mb})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="the store, holding the fleet from 2022-07-01T00:00Z")
    p.add_argument("--hours", type=int, default=168)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--fleet", default="", help="what the store holds, recorded with the results")
    p.add_argument("--json", default=str(BENCH_DIR / "results" / "pull_bench.json"))
    p.add_argument("--child", nargs=3, metavar=("URL", "DB", "HOURS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    if not args.url:
        p.error("--url is required")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True).stdout.strip())
    requests = recorded_requests(args.url, args.hours)
    result: dict[str, Any] = {
        "benchmark": "pull_bench", "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "nice -n 10 python bench/pull_bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": commit + ("+dirty" if dirty else ""), "machine": machine(), "fleet": args.fleet,
        "hours": args.hours,
        "requests": len(requests), "rounds": []}
    with tempfile.TemporaryDirectory(prefix="wattfleet-pull-bench-") as tmp:
        for n in range(args.rounds):
            floor = bare_http(args.url, requests)
            got = pull(args.url, args.hours, Path(tmp))
            got["vs_floor"] = got["wall_s"] / floor["seconds"]
            result["rounds"].append({"bare_http": floor, "pull": got})
            print(f"round {n + 1}: floor {floor['seconds']:.2f}s, pull {got['wall_s']:.2f}s "
                  f"({got['vs_floor']:.2f}x), CPU {got['process_cpu_s']:.2f}s "
                  f"(main thread {got['main_thread_cpu_s']:.2f}s), peak RSS {got['peak_rss_mb']:.0f} MB", flush=True)
    rounds = result["rounds"]
    result["median"] = {"bare_http_s": median(r["bare_http"]["seconds"] for r in rounds),
                        "pull_wall_s": median(r["pull"]["wall_s"] for r in rounds),
                        "pull_cpu_s": median(r["pull"]["process_cpu_s"] for r in rounds),
                        "vs_floor": median(r["pull"]["vs_floor"] for r in rounds)}
    result["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    mid = result["median"]
    print(f"wrote {out}: median floor {mid['bare_http_s']:.2f}s, pull {mid['pull_wall_s']:.2f}s "
          f"({mid['vs_floor']:.2f}x), CPU {mid['pull_cpu_s']:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
