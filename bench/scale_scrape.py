"""Benchmark: one real Prometheus scrapes hundreds of simulated exporters served by one process.

Not a test. ``Fleet`` (what ``wattfleet simulate`` runs) serves N nodes x G GPUs at
``/nodes/<name>/metrics``; Prometheus discovers them through file_sd and scrapes every
``--scrape`` seconds while simulated time runs ``--acceleration`` times faster. Recorded:
targets up, scrape duration (Prometheus' own ``scrape_duration_seconds``), samples per scrape,
simulator tick time and overruns, CPU used by the simulator, and the fleet's GPU energy from
``increase()`` against the simulator's ground truth.

Usage: flock /tmp/wattfleet-bench.lock python bench/scale_scrape.py [--nodes 300] [--gpus 8]
       [--seconds 60] [--json bench/results/scale_scrape.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from scale_common import BENCH_DIR, ROOT, PrometheusServer


def main(argv: list[str] | None = None) -> int:
    from wattfleet.core import catalog
    from wattfleet.sim.config import FleetConfig
    from wattfleet.sim.fleet import Fleet

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=300)
    p.add_argument("--gpus", type=int, default=8)
    p.add_argument("--interval", type=float, default=5.0, help="simulator tick, real seconds")
    p.add_argument("--acceleration", type=float, default=12.0)
    p.add_argument("--scrape", default="5s")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--json", default=str(BENCH_DIR / "results" / "scale_scrape.json"))
    args = p.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wattfleet-scrape-") as tmp:
        cfg = FleetConfig(nodes=args.nodes, gpus_per_node=args.gpus, interval=args.interval,
                          acceleration=args.acceleration, seed=3, gpu_models=("h100", "a100"),
                          workdir=Path(tmp) / "sim")
        t = time.perf_counter()
        fleet = Fleet(cfg)
        build_s = time.perf_counter() - t
        try:
            fleet.serve()
            sd = Path(tmp) / "targets.json"
            fleet.dump_file_sd(sd)
            job = {"job_name": "simulated", "scrape_interval": args.scrape, "scrape_timeout": args.scrape,
                   "file_sd_configs": [{"files": [str(sd)]}]}
            with PrometheusServer(extra_scrape_configs=[job], scrape_interval=args.scrape) as prom:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    r = prom.query('sum(up{job="simulated"})')
                    if r and float(r[0]["value"][1]) == args.nodes:
                        break
                    time.sleep(1)
                up_after_s = time.perf_counter() - t
                prom.wait_for(catalog.GPU_ENERGY.series, min_results=args.nodes * args.gpus, timeout=120)
                cpu0 = resource.getrusage(resource.RUSAGE_SELF)
                fleet.start()
                time.sleep(args.seconds)
                fleet.pause()
                cpu1 = resource.getrusage(resource.RUSAGE_SELF)
                truth = sum(v["exporter_gpu_joules"] for v in fleet.ground_truth().values())
                true_gpu = sum(v["gpu_joules"] for v in fleet.ground_truth().values())
                sel = catalog.GPU_ENERGY.series
                deadline = time.monotonic() + 60
                stored = 0.0
                while time.monotonic() < deadline:   # wait for the paused values to be scraped everywhere
                    r = prom.query(f"sum({sel})")
                    stored = float(r[0]["value"][1]) if r else 0.0
                    if abs(stored - truth) <= 1e-6 * truth:
                        break
                    time.sleep(1)
                q = lambda e: float(prom.query(e)[0]["value"][1])  # noqa: E731
                window = f"{int(args.seconds + 120)}s"
                result = {
                    "benchmark": "scale_scrape",
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "nodes": args.nodes, "gpus": args.nodes * args.gpus, "scrape_interval": args.scrape,
                    "sim_interval_s": args.interval, "acceleration": args.acceleration, "seconds": args.seconds,
                    "fleet_build_s": build_s, "all_targets_up_after_s": up_after_s,
                    "targets_up": q('sum(up{job="simulated"})'),
                    "scrape_duration_p50_s": q(f'quantile(0.5, max_over_time(scrape_duration_seconds'
                                               f'{{job="simulated"}}[{window}]))'),
                    "scrape_duration_max_s": q(f'max(max_over_time(scrape_duration_seconds{{job="simulated"}}'
                                               f'[{window}]))'),
                    "samples_per_scrape": q('avg(scrape_samples_scraped{job="simulated"})'),
                    "series_total": q('sum(scrape_samples_scraped{job="simulated"})'),
                    "sim_ticks": fleet.ticks, "sim_overruns": fleet.overruns,
                    "sim_last_tick_s": fleet.last_tick_seconds, "sim_max_tick_s": fleet.max_tick_seconds,
                    "simulator_cpu_fraction": ((cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime))
                                              / args.seconds,
                    "prometheus_gpu_joules": stored, "exporter_gpu_joules": truth, "true_gpu_joules": true_gpu,
                    "stored_vs_exporter": stored / truth - 1, "exporter_vs_truth": truth / true_gpu - 1,
                }
        finally:
            fleet.stop()
    result["total_s"] = time.perf_counter() - started
    result["command"] = "flock /tmp/wattfleet-bench.lock python bench/scale_scrape.py " + " ".join(argv or sys.argv[1:])
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
