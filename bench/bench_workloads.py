"""What attributing energy to workloads adds to the exporter's CPU: 100 pods on a node, 1 s sampling.

Two exporter processes (bench/bench_exporter_fakenode.py) run side by side on
the same fake node, 8 fake GPUs and a 2-socket fake powercap tree, both
sampling every second: one without attribution, one with the ``workload``
collector, which asks a fake kubelet (this process, serving the real
pod-resources v1 gRPC API on a unix socket) for the GPU-to-pod mapping every
5 s and reads the fake cgroup v2 tree (``--pods`` pod cgroups, their
``cpu.stat`` advanced every second by this process) and its /proc/stat on
every sample. ``--gpu-pods`` of the pods hold time-sliced GPU replicas.

Measured over ``--rounds`` windows of ``--window`` seconds, both processes at
once (so a busy machine slows both alike): CPU% of one core of each, their
difference (the added cost), and RSS. No scrapes in the windows: what is
measured is the sampling work. Target (issue 17): the added cost under 0.5 %
of one core at 1 s sampling with 100 pods.

    python bench/bench_workloads.py                       # 100 pods, 5 windows of 60 s
    python bench/bench_workloads.py --pods 20 --window 5 --rounds 1
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_exporter_common import (  # noqa: E402
    command_line,
    print_table,
    scrape,
    stop_process,
    write_results,
)
from bench_exporter_scrape import Target, cpu_window, start_ours  # noqa: E402

from wattfleet.core import catalog  # noqa: E402
from wattfleet.sim.fake_cgroup import FakeCgroupTree  # noqa: E402
from wattfleet.sim.fake_kubelet import FakeKubelet, FakePod, gpu_pod  # noqa: E402
from wattfleet.sim.fake_powercap import FakePowercap  # noqa: E402

TARGET_PERCENT = 0.5


def gpu_uuid(i: int) -> str:
    """FakeNvml.with_gpus' UUIDs."""
    return f"GPU-fake-{i:04d}-0000-0000-0000-000000000000"




def workload_series(target: Target) -> dict[str, int]:
    """Workload energy series in one scrape, by component (the run fails loudly when attribution is idle)."""
    _, body = scrape(target.host, target.port)
    out: dict[str, int] = {}
    for line in body.decode().splitlines():
        if line.startswith(catalog.WORKLOAD_ENERGY.series + "{") and 'share="workload"' in line:
            component = line.split('component="', 1)[1].split('"', 1)[0]
            out[component] = out.get(component, 0) + 1
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=100, help="pods on the node, each with a cgroup (default 100)")
    p.add_argument("--gpu-pods", type=int, default=16, help="pods holding time-sliced GPU replicas (default 16)")
    p.add_argument("--gpus", type=int, default=8, help="fake GPUs (default 8)")
    p.add_argument("--window", type=float, default=60.0, help="seconds per measuring window (default 60)")
    p.add_argument("--rounds", type=int, default=5, help="windows (default 5)")
    p.add_argument("--warmup", type=float, default=6.0, help="seconds before measuring (default 6)")
    p.add_argument("--out", help="results directory (default bench/results)")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="wf-bench-wl-") as d:
        root = Path(d)
        powercap = FakePowercap(root / "sys", sockets=2)
        tree = FakeCgroupTree(root / "node", cpus=16)
        rng = random.Random(17)
        pods: list[FakePod] = []
        rels: list[str] = []
        for i in range(args.pods):
            uid = f"{i:08d}-0000-4000-8000-{i:012d}"
            name = f"pod-{i}"
            cg = tree.add_pod("bench", name, uid, qos=("burstable", "besteffort", "guaranteed")[i % 3])
            rels.append(next(r for r, c in tree.cgroups.items() if c is cg))
            if i < args.gpu_pods:
                pods.append(gpu_pod("bench", name, [f"{gpu_uuid(i % args.gpus)}::{i // args.gpus}"], uid=uid))
            else:
                pods.append(FakePod("bench", name, uid=uid))
        kubelet = FakeKubelet(root / "kubelet" / "kubelet.sock", pods).start()
        stop = threading.Event()

        def advance() -> None:  # the node's CPU time flows; this process pays for it, not the exporters
            while not stop.wait(1.0):
                powercap.update()
                tree.run(1.0, {r: rng.uniform(0.0, 0.1) for r in rels}, system_seconds=0.5)

        writer = threading.Thread(target=advance, daemon=True)
        writer.start()
        targets: list[Target] = []
        try:
            targets.append(start_ours(root / "sys", args.gpus, 1.0, [], "without"))
            targets.append(start_ours(root / "sys", args.gpus, 1.0, [
                "--kubelet-socket", str(kubelet.socket_path), "--cgroup-root", str(tree.cgroup_root),
                "--procfs-root", str(tree.proc_stat.parent), "--pod-logs-dir", str(tree.pod_logs)], "with"))
            time.sleep(args.warmup)
            series = workload_series(targets[1])
            if series.get("cpu", 0) != args.pods or series.get("gpu", 0) != min(args.gpu_pods, args.pods):
                raise RuntimeError(f"attribution is not running as set up: workload series {series}, expected "
                                   f"cpu={args.pods} gpu={min(args.gpu_pods, args.pods)}")
            rounds = []
            for _ in range(args.rounds):
                cpu = cpu_window(targets, args.window, None)
                rounds.append({"without": cpu["without"], "with": cpu["with"], "added": cpu["with"] - cpu["without"]})
            rss = {t.label: round(t.memory_mb()[0], 1) for t in targets}
            calls = kubelet.calls
        finally:
            stop.set()
            for t in targets:
                stop_process(t.proc)
            kubelet.stop()

    added = statistics.median(r["added"] for r in rounds)
    summary: dict[str, Any] = {
        "pods": args.pods, "gpu_pods": args.gpu_pods, "gpus": args.gpus, "interval_s": 1.0,
        "window_s": args.window, "rounds": rounds,
        "cpu_percent_of_a_core_median": {
            "without": statistics.median(r["without"] for r in rounds),
            "with": statistics.median(r["with"] for r in rounds), "added": added},
        "rss_mb": rss, "workload_series": series, "kubelet_list_calls": calls,
        "target_added_percent": TARGET_PERCENT, "target_met": added < TARGET_PERCENT,
    }
    path = write_results("bench_workloads", summary, command_line("bench_workloads.py", argv or sys.argv[1:]),
                         args.out)
    print_table([[i + 1, f"{r['without']:.3f}", f"{r['with']:.3f}", f"{r['added']:.3f}"] for i, r in enumerate(rounds)],
                ["window", "without %", "with %", "added %"])
    print(f"median added cost: {added:.3f} % of one core (target < {TARGET_PERCENT} %); RSS MB {rss}; "
          f"series {series}; results {path}")
    return 0 if added < TARGET_PERCENT else 1


if __name__ == "__main__":
    sys.exit(main())
