"""Our exporter in its own process, on a fake node: RAPL tree + fake GPUs + host sensor.

``wattfleet exporter`` cannot take fake GPUs, so the scrape benchmark starts
this script instead: it builds the same Sampler and MetricsServer the CLI
builds, with ``FakeNvml`` in place of the NVIDIA library, so that the
benchmark can read this process' CPU time and RSS apart from its own.
The parent owns the powercap tree (and keeps its energy moving); this process
only reads it. Prints ``URL <url>`` once serving; stops on SIGTERM/SIGINT.

    python bench/bench_exporter_fakenode.py --sysfs-root /tmp/tree --gpus 8

With ``--kubelet-socket`` and/or ``--cgroup-root`` it also runs the ``workload``
collector (energy by pod) against a fake kubelet and a fake cgroup tree the
parent owns (bench/bench_workloads.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wattfleet import __version__
from wattfleet.core.http import MetricsServer
from wattfleet.core.signals import wait_for_stop_signal
from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.sensors.base import Sensor
from wattfleet.exporter.sensors.host import HostSensor
from wattfleet.exporter.sensors.nvml import NvmlSensor
from wattfleet.exporter.sensors.rapl import RaplSensor
from wattfleet.exporter.workloads.attach import attach_workloads
from wattfleet.exporter.workloads.cgroups import parse_patterns
from wattfleet.exporter.workloads.kubelet import PodResourcesClient
from wattfleet.exporter.workloads.sensor import CgroupConfig, WorkloadSensor
from wattfleet.sim.fake_nvml import FakeNvml


def workload_sensor(args: argparse.Namespace) -> WorkloadSensor:
    """The workload collector as ``wattfleet exporter`` builds it from the same flags."""
    lister = PodResourcesClient(args.kubelet_socket, timeout=1.0) if args.kubelet_socket else None
    cgroups = None
    if args.cgroup_root:
        cgroups = CgroupConfig(Path(args.cgroup_root), parse_patterns(["kubernetes"]),
                               Path(args.procfs_root) / "stat", Path(args.pod_logs_dir) if args.pod_logs_dir else None)
    return WorkloadSensor(lister, cgroups, refresh=5.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sysfs-root", required=True, help="root of the fake sysfs tree (made by the parent)")
    p.add_argument("--gpus", type=int, default=8, help="number of fake GPUs (default 8)")
    p.add_argument("--gpu-watts", type=float, default=350.0, help="constant power of each fake GPU")
    p.add_argument("--interval", type=float, default=1.0, help="sampling period in seconds (default 1)")
    p.add_argument("--no-host", action="store_true",
                   help="leave out the host sensor (CPU utilization, memory): RAPL only, node_exporter's work")
    p.add_argument("--listen-address", default="127.0.0.1:0", help="HOST:PORT (default a free port)")
    p.add_argument("--kubelet-socket", help="attribute GPU energy to pods through this pod-resources socket")
    p.add_argument("--cgroup-root", help="attribute CPU/DRAM energy to the pod cgroups under this cgroup v2 root")
    p.add_argument("--procfs-root", default="/proc", help="procfs whose stat file gives the node's CPU time")
    p.add_argument("--pod-logs-dir", help="<namespace>_<pod>_<uid> directories naming pod UIDs")
    args = p.parse_args(argv)

    sensors: list[Sensor] = [RaplSensor(args.sysfs_root)]
    if args.gpus:
        sensors.insert(0, NvmlSensor(nvml=FakeNvml.with_gpus(args.gpus, watts=args.gpu_watts)))
    if not args.no_host:
        sensors.append(HostSensor(estimate=False))
    sampler = Sampler(sensors, {"node": "bench", "cluster": "bench", "site": "bench"},
                      interval=args.interval, version=__version__)
    if args.kubelet_socket or args.cgroup_root:
        attach_workloads(sampler, workload_sensor(args))
    server = MetricsServer(args.listen_address, lambda: sampler.snapshot)
    sampler.start()
    server.start()
    print(f"URL {server.url}", flush=True)
    wait_for_stop_signal()
    server.stop()
    sampler.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
