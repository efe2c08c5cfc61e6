"""A fake node for attribution tests: fake NVML and powercap on a manual clock, a fake cgroup tree, a lister."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from wattfleet.core import catalog
from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.sensors.nvml import NvmlSensor
from wattfleet.exporter.sensors.rapl import RaplSensor
from wattfleet.exporter.workloads.attach import attach_workloads
from wattfleet.exporter.workloads.cgroups import parse_patterns
from wattfleet.exporter.workloads.devices import DeviceHolder, KubeletUnavailable
from wattfleet.exporter.workloads.sensor import CgroupConfig, DeviceLister, OwnerSource, WorkloadSensor
from wattfleet.sim.fake_cgroup import FakeCgroupTree
from wattfleet.sim.fake_nvml import FakeGpu, FakeMig, FakeNvml
from wattfleet.sim.fake_powercap import FakePowercap


class ManualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class MemoryLister:
    """The kubelet in memory (the gRPC path has its own tests): holders, or down."""

    holders: list[DeviceHolder] = field(default_factory=list)
    down: bool = False
    calls: int = 0

    def list_devices(self) -> list[DeviceHolder]:
        self.calls += 1
        if self.down:
            raise KubeletUnavailable("kubelet_unavailable", "fake kubelet down")
        return list(self.holders)

    def close(self) -> None:
        pass


class FakeNode:
    """NVML GPUs, a powercap tree and a cgroup tree under ``root``, sampled by the real Sampler."""

    def __init__(self, root: Path, gpus: int = 4, lister: DeviceLister | None = None,
                 cgroup_specs: tuple[str, ...] = ("kubernetes", "slurm"), mig: dict[int, int] | None = None,
                 refresh: float = 5.0, retention: float = 600.0, owners: OwnerSource | None = None,
                 owners_refresh: float = 30.0) -> None:
        self.clock = ManualClock()
        fake_gpus = []
        for i in range(gpus):
            g = FakeGpu(uuid=f"GPU-{i:04d}", power_watts=100.0 + 50 * i, clock=self.clock)
            if mig and i in mig:
                g.mig = [FakeMig(f"MIG-{i:04d}-{k}", k + 1, 0) for k in range(mig[i])]
            fake_gpus.append(g)
        self.nvml = FakeNvml(fake_gpus)
        (root / "sys").mkdir(parents=True, exist_ok=True)
        self.powercap = FakePowercap(root / "sys", sockets=2, clock=self.clock)
        self.tree = FakeCgroupTree(root / "node", cpus=8)
        cgroups = CgroupConfig(self.tree.cgroup_root, parse_patterns(cgroup_specs), self.tree.proc_stat,
                               self.tree.pod_logs) if cgroup_specs else None
        self.sensor = WorkloadSensor(lister, cgroups, refresh=refresh, retention=retention, clock=self.clock,
                                     owners=owners, owners_refresh=owners_refresh)
        self.sampler = Sampler([NvmlSensor(self.nvml), RaplSensor(root / "sys")], {"node": "n"},
                               interval=1.0, clock=self.clock, timeout=10.0)
        attach_workloads(self.sampler, self.sensor)
        self.sampler.sample_once()
        self.start = self.node_energy()

    def node_energy(self) -> dict[str, float]:
        """The node's energy per component from the published device counters."""
        out = {"gpu": 0.0, "cpu": 0.0, "dram": 0.0}
        for r in self.sampler.last_results.values():
            for s in r.samples:
                if s.metric == catalog.GPU_ENERGY.name:
                    out["gpu"] += s.value
                elif s.metric == catalog.CPU_ENERGY.name and s.labels["domain"] == "package":
                    out["cpu"] += s.value
                elif s.metric == catalog.CPU_ENERGY.name and s.labels["domain"] == "dram":
                    out["dram"] += s.value
        return out

    def step(self, usage: dict[str, float] | None = None, system_seconds: float = 0.5, seconds: float = 1.0) -> None:
        self.clock.now += seconds
        self.powercap.update()
        self.tree.run(seconds, usage or {}, system_seconds)
        self.sampler.sample_once()

    def published(self) -> dict[tuple[str, str, str, str, str, str], float]:
        """The workload counters of the last snapshot's results, by (component, share, ns, pod, container, wl)."""
        out = {}
        text = self.sampler.last_results[self.sensor.name].exposition.decode()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                assert s.name == catalog.WORKLOAD_ENERGY.series and s.labels["node"] == "n"
                lb = s.labels
                out[(lb["component"], lb["share"], lb["namespace"], lb["pod"], lb["container"], lb["workload"])] = \
                    s.value
        return out

    def attributed(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for (component, *_), v in self.published().items():
            out[component] = out.get(component, 0.0) + v
        for component, v in self.sensor._expired.items():
            out[component] = out.get(component, 0.0) + v
        return out

    def measured_since_start(self) -> dict[str, float]:
        now = self.node_energy()
        return {k: now[k] - self.start[k] for k in now}

    def close(self) -> None:
        self.sampler.stop()
