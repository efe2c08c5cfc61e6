"""Build a running exporter on fake hardware, as tests and benchmarks need it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wattfleet.core.http import MetricsServer
from wattfleet.core.webconfig import WebConfig
from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.sensors.base import Sensor
from wattfleet.exporter.sensors.host import HostSensor
from wattfleet.exporter.sensors.nvml import NvmlSensor
from wattfleet.exporter.sensors.rapl import RaplSensor
from wattfleet.exporter.workloads.attach import attach_workloads
from wattfleet.exporter.workloads.cgroups import parse_patterns
from wattfleet.exporter.workloads.devices import DeviceHolder
from wattfleet.exporter.workloads.sensor import CgroupConfig, WorkloadSensor
from wattfleet.sim.fake_cgroup import FakeCgroupTree
from wattfleet.sim.fake_nvml import FakeNvml
from wattfleet.sim.fake_powercap import FakePowercap


class FakePod:
    """Pod ml/train (owner deployment/train) holding GPU 0 and using half a CPU, on a fake cgroup tree.

    Attached to a sampler as ``wattfleet exporter`` attaches the workload collector
    (the kubelet answered in memory: its gRPC path has its own tests), so the node
    also publishes ``wattfleet_workload_energy_joules_total`` for every share.
    """

    NAMESPACE, POD, WORKLOAD = "ml", "train", "deployment/train"

    def __init__(self, root: Path, sampler: Sampler, gpu_uuid: str) -> None:
        self.cgroups = FakeCgroupTree(root, cpus=4)
        pod = self.cgroups.add_pod(self.NAMESPACE, self.POD, "0000-train")
        rel = next(r for r, c in self.cgroups.cgroups.items() if c is pod)
        lister = _MemoryKubelet([DeviceHolder(self.NAMESPACE, self.POD, "main", "nvidia.com/gpu", gpu_uuid)])
        cgroups = CgroupConfig(self.cgroups.cgroup_root, parse_patterns(["kubernetes"]), self.cgroups.proc_stat,
                               self.cgroups.pod_logs)
        attach_workloads(sampler, WorkloadSensor(lister, cgroups, refresh=1.0,
                                                 workload_of=lambda: {(self.NAMESPACE, self.POD): self.WORKLOAD}))
        self._stop = threading.Event()

        def cpu_time() -> None:
            while not self._stop.wait(0.05):
                self.cgroups.run(0.05, {rel: 0.025}, system_seconds=0.01)

        self._thread = threading.Thread(target=cpu_time, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _MemoryKubelet:
    def __init__(self, holders: list[DeviceHolder]) -> None:
        self.holders = holders

    def list_devices(self) -> list[DeviceHolder]:
        return list(self.holders)

    def close(self) -> None:
        pass


@dataclass
class FakeNode:
    powercap: FakePowercap
    nvml: FakeNvml
    sampler: Sampler
    server: MetricsServer
    pod: FakePod | None = None

    def stop(self) -> None:
        self.server.stop()
        self.sampler.stop()
        self.powercap.stop_writer()
        if self.pod is not None:
            self.pod.stop()


def start_fake_node(sysfs_root: Path, gpus: int = 2, interval: float = 0.25, node: str = "node-a",
                    site: str = "site-a", cluster: str = "c1", web: WebConfig | None = None,
                    max_energy_range_uj: int | None = None, gpu_watts: float = 300.0,
                    clock: Callable[[], float] | None = None, writer_period: float = 0.01,
                    pod_root: Path | None = None, port: int = 0) -> FakeNode:
    """``pod_root``: also run :class:`FakePod` (cgroup tree under that dir) and the workload collector;
    ``port``: where it listens on 127.0.0.1 (0: any free port)."""
    kwargs: dict[str, Any] = {"max_energy_range_uj": max_energy_range_uj} if max_energy_range_uj else {}
    if clock is not None:
        kwargs["clock"] = clock
    powercap = FakePowercap(sysfs_root, sockets=2, **kwargs)
    nvml_kwargs: dict[str, Any] = {"clock": clock} if clock else {}
    nvml = FakeNvml.with_gpus(gpus, watts=gpu_watts, **nvml_kwargs)
    sensors: list[Sensor] = [RaplSensor(sysfs_root), NvmlSensor(nvml), HostSensor(estimate=False)]
    sampler = Sampler(sensors, {"node": node, "cluster": cluster, "site": site}, interval=interval)
    pod = FakePod(pod_root, sampler, nvml.gpus[0].uuid) if pod_root is not None else None
    if writer_period:
        powercap.start_writer(writer_period)
    sampler.start()
    server = MetricsServer(f"127.0.0.1:{port}", lambda: sampler.snapshot, web)
    server.start()
    return FakeNode(powercap, nvml, sampler, server, pod)
