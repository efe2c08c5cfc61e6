"""Scrape cost of our exporter beside prometheus-node-exporter, in one run.

Both exporters read the same fake powercap tree with 2 sockets (package,
core, uncore, dram each); ours also samples 8 fake GPUs and the host sensor
at 1 s, in its own process (bench_exporter_fakenode.py) so that its CPU time
and RSS are its own. node_exporter runs with only the RAPL collector:

    prometheus-node-exporter --collector.disable-defaults --collector.rapl --path.sysfs=<tree>

Measured, in this order:
  1. CPU% of each process over ``--idle-seconds`` with no scrapes (ours keeps sampling at 1 s);
  2. the same with one scrape of each per second (what Prometheus does at scrape_interval=1s);
  3. ``--scrapes`` interleaved scrapes of each (same client, new connection each, keep-alive off),
     without and with gzip: latency p50/p99 and CPU seconds per scrape (ours also net of its
     background sampling, using the rate from phase 1);
  4. RSS and peak RSS (VmHWM) of each process.

Targets (issue 2): our p50 <= node_exporter's; our CPU < 1% of a core at 1 s sampling
with 8 GPUs; our RSS < 60 MB.

    python bench/bench_exporter_scrape.py                  # default: 2000 scrapes, 30 s windows
    python bench/bench_exporter_scrape.py --scrapes 200 --idle-seconds 5
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_exporter_common import (  # noqa: E402
    command_line,
    free_port,
    have_node_exporter,
    percentile,
    print_table,
    scrape,
    start_node_exporter,
    stop_process,
    wait_http,
    write_results,
)

from wattfleet.sim.fake_powercap import FakePowercap  # noqa: E402

NAME = "bench_exporter_scrape"
CPU_TARGET_PERCENT = 1.0
RSS_TARGET_MB = 60.0


class Target:
    """One exporter process under test."""

    def __init__(self, label: str, proc: subprocess.Popen[Any], host: str, port: int) -> None:
        self.label, self.proc, self.host, self.port = label, proc, host, port
        self.ps = psutil.Process(proc.pid)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def memory_mb(self) -> tuple[float, float]:
        """(RSS, peak RSS) in MB (10^6 bytes)."""
        rss = self.ps.memory_info().rss / 1e6
        hwm = rss
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024 / 1e6
        except OSError:
            pass
        return rss, hwm


def start_ours(sysfs_root: Path, gpus: int, interval: float, extra: Sequence[str] = (),
               label: str = "ours") -> Target:
    """bench_exporter_fakenode.py in its own process (``extra``: more of its flags), once it serves."""
    script = Path(__file__).resolve().parent / "bench_exporter_fakenode.py"
    proc = subprocess.Popen([sys.executable, str(script), "--sysfs-root", str(sysfs_root), "--gpus", str(gpus),
                             "--interval", str(interval), *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("URL "):
        stop_process(proc)
        raise RuntimeError(f"{label}: exporter did not start (said {line!r})")
    url = line[4:]
    wait_http(url, proc)
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    return Target(label, proc, host, int(port))


def check_exports(ours: Target, node: Target, gpus: int) -> dict[str, int]:
    """Both exporters must see the tree: fail loudly rather than time an empty scrape."""
    _, ne_body = scrape(node.host, node.port)
    _, our_body = scrape(ours.host, ours.port)
    ne_rapl = [ln for ln in ne_body.decode().splitlines() if ln.startswith("node_rapl_")]
    ne_pkg = [ln for ln in ne_rapl if ln.startswith("node_rapl_package_joules_total")]
    our_pkg = [ln for ln in our_body.decode().splitlines()
               if ln.startswith("wattfleet_cpu_energy_joules_total{") and 'domain="package"' in ln]
    our_gpu = [ln for ln in our_body.decode().splitlines() if ln.startswith("wattfleet_gpu_energy_joules_total{")]
    if len(ne_pkg) != 2:
        raise RuntimeError(f"node_exporter exports {len(ne_pkg)} node_rapl_package_joules_total series from the "
                           f"fake tree, expected 2: {ne_rapl}")
    if len(our_pkg) != 2 or len(our_gpu) != gpus:
        raise RuntimeError(f"our exporter exports {len(our_pkg)} package and {len(our_gpu)} GPU energy series")
    return {"node_exporter_rapl_series": len(ne_rapl), "ours_package_series": len(our_pkg),
            "ours_gpu_series": len(our_gpu)}


def cpu_window(targets: list[Target], seconds: float, scrape_every: float | None) -> dict[str, float]:
    """CPU% of one core per target over ``seconds``, optionally scraping each every ``scrape_every`` s."""
    before = {t.label: t.cpu() for t in targets}
    started = time.monotonic()
    end = started + seconds
    next_scrape = started
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if scrape_every is not None and now >= next_scrape:
            for t in targets:
                scrape(t.host, t.port)
            next_scrape += scrape_every
        time.sleep(max(0.0, min(end, next_scrape if scrape_every else end) - time.monotonic()))
    elapsed = time.monotonic() - started
    return {t.label: 100.0 * (t.cpu() - before[t.label]) / elapsed for t in targets}


def latency_run(targets: list[Target], scrapes: int, gzip: bool) -> dict[str, dict[str, float]]:
    """Interleaved scrapes (order alternates each round); latency and CPU per target."""
    times: dict[str, list[float]] = {t.label: [] for t in targets}
    sizes: dict[str, int] = {}
    before = {t.label: t.cpu() for t in targets}
    started = time.monotonic()
    for i in range(scrapes):
        for t in (targets if i % 2 == 0 else targets[::-1]):
            seconds, body = scrape(t.host, t.port, gzip=gzip)
            times[t.label].append(seconds)
            sizes[t.label] = len(body)
    elapsed = time.monotonic() - started
    out = {}
    for t in targets:
        out[t.label] = {"p50_ms": 1e3 * percentile(times[t.label], 50),
                        "p99_ms": 1e3 * percentile(times[t.label], 99),
                        "mean_ms": 1e3 * sum(times[t.label]) / len(times[t.label]),
                        "cpu_seconds": t.cpu() - before[t.label], "elapsed_seconds": elapsed,
                        "body_bytes": sizes[t.label], "scrapes": scrapes}
    return out


def ratio(a: float, b: float) -> float | None:
    """ours/node_exporter; None when node_exporter's figure is 0 (below psutil's 10 ms tick)."""
    return a / b if b else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scrapes", type=int, default=2000, help="interleaved scrapes of each exporter (default 2000)")
    p.add_argument("--idle-seconds", type=float, default=30.0,
                   help="length of each CPU%% window (default 30)")
    p.add_argument("--gpus", type=int, default=8, help="fake GPUs on our side (default 8)")
    p.add_argument("--interval", type=float, default=1.0, help="our sampling period (default 1)")
    p.add_argument("--warmup", type=int, default=50, help="untimed scrapes of each first (default 50)")
    p.add_argument("--out", help="results directory (default bench/results)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    if not have_node_exporter():
        print("prometheus-node-exporter not found (apt-get install prometheus-node-exporter)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="wattfleet-bench-sysfs-") as tmp:
        tree = FakePowercap(tmp, sockets=2)
        tree.start_writer(period=0.5)  # energy keeps moving; the writer's CPU is this process', not theirs
        targets: list[Target] = []
        try:
            ours = start_ours(Path(tmp), args.gpus, args.interval)
            targets.append(ours)
            port = free_port()
            node = Target("node_exporter", start_node_exporter(tmp, port), "127.0.0.1", port)
            targets.append(node)
            series = check_exports(ours, node, args.gpus)
            for _ in range(args.warmup):
                for t in targets:
                    scrape(t.host, t.port)
            idle = cpu_window(targets, args.idle_seconds, None)
            scraped = cpu_window(targets, args.idle_seconds, 1.0)
            plain = latency_run(targets, args.scrapes, gzip=False)
            gz = latency_run(targets, args.scrapes, gzip=True)
            memory = {t.label: t.memory_mb() for t in targets}
        finally:
            for t in targets:
                stop_process(t.proc)
            tree.stop_writer()

    for run in (plain, gz):
        for label, r in run.items():
            background = idle[label] / 100.0 * r["elapsed_seconds"]
            r["cpu_ms_per_scrape"] = 1e3 * r["cpu_seconds"] / r["scrapes"]
            r["cpu_ms_per_scrape_net"] = 1e3 * max(r["cpu_seconds"] - background, 0.0) / r["scrapes"]

    o, n = "ours", "node_exporter"
    rows: list[list[Any]] = []

    def row(what: str, a: float, b: float, fmt: str = "{:.3f}") -> None:
        r = ratio(a, b)
        rows.append([what, fmt.format(a), fmt.format(b), "n/a" if r is None else f"{r:.2f}"])

    for tag, run in (("", plain), (" gzip", gz)):
        row(f"scrape p50 ms{tag}", run[o]["p50_ms"], run[n]["p50_ms"])
        row(f"scrape p99 ms{tag}", run[o]["p99_ms"], run[n]["p99_ms"])
        row(f"CPU ms/scrape{tag}", run[o]["cpu_ms_per_scrape"], run[n]["cpu_ms_per_scrape"])
        row(f"CPU ms/scrape{tag}, net of sampling", run[o]["cpu_ms_per_scrape_net"],
            run[n]["cpu_ms_per_scrape_net"])
        row(f"body bytes{tag}", run[o]["body_bytes"], run[n]["body_bytes"], "{:.0f}")
    row(f"CPU % of a core, no scrapes ({args.idle_seconds:g} s)", idle[o], idle[n])
    row(f"CPU % of a core, 1 scrape/s ({args.idle_seconds:g} s)", scraped[o], scraped[n])
    row("RSS MB", memory[o][0], memory[n][0], "{:.1f}")
    row("peak RSS MB (VmHWM)", memory[o][1], memory[n][1], "{:.1f}")

    targets_met = {
        "p50_no_worse_than_node_exporter": plain[o]["p50_ms"] <= plain[n]["p50_ms"],
        "cpu_under_1pct_no_scrapes": idle[o] < CPU_TARGET_PERCENT,
        "cpu_under_1pct_1s_scrape": scraped[o] < CPU_TARGET_PERCENT,
        "rss_under_60mb": memory[o][0] < RSS_TARGET_MB,
    }
    print(f"Scrape benchmark: ours ({args.gpus} fake GPUs + 2-socket RAPL + host, {args.interval:g} s sampling) "
          f"vs node_exporter (RAPL only), same fake tree; {args.scrapes} interleaved scrapes each, keep-alive off")
    print_table(rows, ["measure", "ours", "node_exporter", "ours/node_exporter"])
    for key, ok in targets_met.items():
        print(f"target {key}: {'PASS' if ok else 'FAIL'}")
    path = write_results(NAME, {
        "params": vars(args), "series": series, "latency_plain": plain, "latency_gzip": gz,
        "cpu_percent_no_scrapes": idle, "cpu_percent_1s_scrape": scraped,
        "rss_mb": {k: v[0] for k, v in memory.items()}, "peak_rss_mb": {k: v[1] for k, v in memory.items()},
        "ratios_ours_over_node_exporter": {r[0]: None if r[3] == "n/a" else float(r[3]) for r in rows},
        "targets_met": targets_met}, command_line("bench_exporter_scrape.py", argv), args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
