"""Benchmark: `wattfleet aggregate` of two checkouts side by side on one store, interleaved rounds.

Not a test. Each round runs the BEFORE checkout's aggregate, then the AFTER one's (each its own venv,
``<tree>/.venv/bin/python -m wattfleet aggregate``, a fresh DuckDB), each followed by the bare-HTTP floor
of its requests (``ingest_bench.bare_http``), so both see the same store and the same moment of a
shared machine. Wall and CPU seconds and peak RSS come from ``wait4``.

Usage: nice -n 10 python bench/ingest_ab.py --url URL --config FACILITY --before TREE --after TREE
       [--hours 168] [--rounds 2] [--json bench/results/ingest_ab_10k_week.json]
(the store loaded as ``ingest_bench.py`` loads it: ``load_vm``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ingest_bench import START, bare_http, machine, recorded_requests
from scale_common import run_child


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--before", required=True, help="checkout with its own .venv")
    p.add_argument("--after", required=True, help="checkout with its own .venv")
    p.add_argument("--hours", type=int, default=168)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--workdir", default="/var/tmp")
    p.add_argument("--json", required=True)
    args = p.parse_args(argv)
    trees = {"before": args.before, "after": args.after}
    commits = {k: subprocess.run(["git", "-C", v, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
               for k, v in trees.items()}
    end = START + timedelta(hours=args.hours)
    runs: list[dict[str, Any]] = []
    for rnd in range(args.rounds):
        for name, tree in trees.items():
            db = Path(args.workdir) / f"ingest-ab-{name}.duckdb"
            for path in (db, Path(f"{db}.wal")):
                path.unlink(missing_ok=True)
            cmd = [f"{tree}/.venv/bin/python", "-m", "wattfleet", "aggregate", "--config", args.config, "--db", str(db),
                   "--prometheus", args.url, "--from", START.isoformat(), "--to", end.isoformat(),
                   "--lookback-hours", "0", "--no-progress", "--query-timeout", "600"]
            res = run_child(cmd, timeout=7200)
            if res.rc != 0:
                raise RuntimeError(f"{name}: aggregate failed: {res.stderr[-2000:]}")
            stages = [line.split("stage wall times:", 1)[1].strip().strip('"')
                      for line in res.stderr.splitlines() if "stage wall times:" in line]
            floor = bare_http(args.url, recorded_requests(args.url, args.hours))
            runs.append({"round": rnd, "code": name, "wall_s": res.seconds, "cpu_s": res.cpu_s,
                         "peak_rss_mb": res.peak_rss_mb, "stages": stages[0] if stages else "",
                         "db_bytes": db.stat().st_size, "bare_http_s": floor["seconds"],
                         "wall_vs_bare_http": res.seconds / floor["seconds"], "load_average_after": os.getloadavg()})
            print(json.dumps(runs[-1]), flush=True)
            db.unlink()
    out = {"benchmark": "ingest_ab", "command": "nice -n 10 python bench/ingest_ab.py " + " ".join(
               argv if argv is not None else sys.argv[1:]),
           "commits": commits, "machine": machine(),
           "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), "runs": runs}
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
