"""What an exporter costs its node in total CPU, at equal work: ours against node_exporter, RAPL only.

The scrape benchmark (bench_exporter_scrape.py) compares latency and CPU per scrape, but ours also
samples 8 GPUs and the host every second while node_exporter reads sysfs only when scraped: what a
node pays is total CPU over time, for the same series. Here both read the same fake 2-socket
powercap tree and export RAPL only (ours: ``--gpus 0 --no-host``), and each runs in its own process;
measured is CPU % of one core over a window, for each scrape interval, with ours sampling

* every second (the default ``--interval 1``: RAPL wraps and counter resets are caught within a
  second, inference phases can be attributed per second), and
* once per scrape interval (``--interval`` = scrape interval: about what sampling at scrape time
  costs, the way node_exporter works).

    python bench/bench_exporter_equal_work.py                      # scrape every 1 s and 15 s, 60 / 150 s windows
    python bench/bench_exporter_equal_work.py --scrape-intervals 1 --window 10     # quick look
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_exporter_common import (  # noqa: E402
    command_line,
    free_port,
    have_node_exporter,
    print_table,
    start_node_exporter,
    stop_process,
    write_results,
)
from bench_exporter_scrape import Target, cpu_window, start_ours  # noqa: E402

from wattfleet.sim.fake_powercap import FakePowercap  # noqa: E402

NAME = "bench_exporter_equal_work"


def measure(tree: str, scrape_every: float, window: float) -> dict[str, dict[str, float]]:
    """CPU % of a core of ours and of node_exporter over the same window, per sampling mode of ours."""
    out: dict[str, dict[str, float]] = {}
    port = free_port()
    node = Target("node_exporter", start_node_exporter(tree, port), "127.0.0.1", port)
    try:
        for mode, interval in (("1s_sampling", 1.0), ("sampling_at_scrape_interval", scrape_every)):
            if mode != "1s_sampling" and interval == 1.0:
                out[mode] = out["1s_sampling"]  # scraping every second: the two modes are the same run
                continue
            ours = start_ours(Path(tree), 0, interval, ["--no-host"])
            try:
                # Both scraped in the same window, so the machine's load is the same for both.
                out[mode] = cpu_window([ours, node], window, scrape_every)
            finally:
                stop_process(ours.proc)
    finally:
        stop_process(node.proc)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scrape-intervals", type=float, nargs="+", default=[1.0, 15.0], metavar="SECONDS")
    p.add_argument("--window", type=float, default=0.0, metavar="SECONDS",
                   help="measuring window per configuration (default: 60 s, or 10 scrapes if longer)")
    p.add_argument("--out", help="results directory (default bench/results)")
    args = p.parse_args(argv)
    if not have_node_exporter():
        print("prometheus-node-exporter is not installed (Debian package)", file=sys.stderr)
        return 2
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="wattfleet-bench-sysfs-") as tmp:
        tree = FakePowercap(tmp, sockets=2)
        tree.start_writer(period=0.5)
        try:
            for every in args.scrape_intervals:
                window = args.window or max(60.0, 10 * every)
                results[f"scrape_every_{every:g}s"] = measure(tmp, every, window)
        finally:
            tree.stop_writer()
    rows: list[list[Any]] = []
    for key, modes in results.items():
        for mode, cpu in modes.items():
            n = cpu["node_exporter"]
            rows.append([key, mode, f"{cpu['ours']:.3f}", f"{n:.3f}", f"{cpu['ours'] / n:.2f}" if n else "n/a"])
    print("CPU % of one core, RAPL only (2 sockets), same fake tree, each exporter in its own process")
    print_table(rows, ["scrapes", "ours samples", "ours", "node_exporter (same window)", "ours/node_exporter"])
    path = write_results(NAME, {"params": vars(args), "cpu_percent_of_a_core": results},
                         command_line("bench_exporter_equal_work.py", argv), args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
