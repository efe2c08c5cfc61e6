"""One simulated node: fake boards and a fake powercap tree read by the real exporter.

Each :class:`SimNode` is a real :class:`~wattfleet.exporter.sampler.Sampler`
over the real NVML, RAPL and host sensors, which read
:mod:`~wattfleet.sim.fake_nvml` boards and a
:mod:`~wattfleet.sim.fake_powercap` tree, so what it publishes is exactly what
an exporter on such hardware would. Nodes do not run their own sampler
threads: the fleet ticks them on a shared :class:`SimClock`, and fake RAPL
files are written only when a node samples, which is what lets hundreds of
nodes run on a couple of cores. The node applies its scheduled
:mod:`~wattfleet.sim.faults` at every tick and keeps the ground truth its
exporter's counters are checked against.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wattfleet import __version__
from wattfleet.core import catalog
from wattfleet.core.exposition import Snapshot
from wattfleet.exporter.inference.attach import attach_engines
from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.sensors.base import Sensor
from wattfleet.exporter.sensors.host import HostSensor
from wattfleet.exporter.sensors.nvml import NvmlSensor
from wattfleet.exporter.sensors.rapl import RaplSensor
from wattfleet.exporter.state import StateFile
from wattfleet.exporter.workloads.attach import attach_workloads
from wattfleet.sim.config import FleetConfig
from wattfleet.sim.engines import SimEngines, layout
from wattfleet.sim.fake_nvml import FakeGpu, FakeNvml
from wattfleet.sim.fake_powercap import FakePowercap
from wattfleet.sim.faults import Fault
from wattfleet.sim.load import CpuShape, GpuModel, GpuWorkload, TraceLoad

if TYPE_CHECKING:
    from wattfleet.sim.pods import NodePods, PodsSetup

NVML_ERROR_UNKNOWN = 999
# A wrap storm's default RAPL range is sized from a socket's draw at full load.
MAX_PACKAGE_WATTS = CpuShape().package_watts(1.0)


class SimClock:
    """Simulated unix time shared by a fleet's fakes and samplers; moves only at ticks."""

    def __init__(self, start: float) -> None:
        self.start = self.now = start

    def __call__(self) -> float:
        return self.now

    @property
    def elapsed(self) -> float:
        return self.now - self.start


class SimNvml(FakeNvml):
    """FakeNvml that can fail calls on chosen boards with NVML_ERROR_UNKNOWN (a sensor error)."""

    def __init__(self, gpus: list[FakeGpu]) -> None:
        super().__init__(gpus)
        self.failing: set[int] = set()

    def _check(self, gpu: FakeGpu, feature: str | None = None) -> None:
        super()._check(gpu, feature)
        if id(gpu) in self.failing:
            raise self.NVMLError(NVML_ERROR_UNKNOWN)


class _UnrenderedSampler(Sampler):
    """A Sampler that skips the text exposition: backfill reads counters from its results directly."""

    def _render(self, *args: Any) -> bytes:
        return b""


@dataclass
class _Memory:
    """What psutil's ``virtual_memory()`` returns, as much of it as the host sensor reads."""

    total: int
    available: int


class SimNode:
    """One simulated exporter: fake boards and powercap tree, the real sensors and a Sampler."""

    def __init__(self, index: int, name: str, site: str, zone: str, model: GpuModel, config: FleetConfig,
                 clock: SimClock, trace: Sequence[float], rng: random.Random, sysfs_root: Path | None,
                 faults: list[Fault], render: bool = True, state_path: Path | None = None,
                 pods: PodsSetup | None = None) -> None:
        self.render = render
        self.state_path = state_path
        self.index, self.name, self.site, self.zone, self.model = index, name, site, zone, model
        self.config, self.clock, self.faults = config, clock, faults
        self.load = TraceLoad(trace, offset_hours=rng.uniform(-2.0, 2.0), scale=rng.uniform(0.8, 1.2))
        self.cpu_shape = CpuShape()
        self.skew = 0.0
        self.restarts = 0
        self._restart_done: set[int] = set()
        self.gpus = [FakeGpu(uuid=f"GPU-sim{index:05d}-{g:04d}-{rng.getrandbits(32):08x}", name=model.nvml_name,
                             power_watts=model.idle_watts, power_limit_watts=model.tdp_watts,
                             memory_total=model.memory_bytes, clock=clock)
                     for g in range(config.gpus_per_node)]
        self.engines = SimEngines(layout(len(self.gpus), config.engine_cache_hit_ratio,
                                         config.engine_hit_ratio_spread), model,
                                  random.Random(rng.getrandbits(64)), clock.now) if config.engines else None
        self.workloads = [GpuWorkload(model, self.load, random.Random(rng.getrandbits(64)),
                                      prefill_share=self.engines.prefill_share_of(g) if self.engines else None)
                          for g in range(len(self.gpus))]
        self.nvml = SimNvml(self.gpus)
        self.sysfs_root = sysfs_root
        self.powercap: FakePowercap | None = None
        if sysfs_root is not None:
            storm = [f for f in faults if f.kind == "rapl_wrap_storm"]
            kwargs: dict[str, Any] = {}
            if storm:
                joules = storm[0].range_joules or max(2.5 * MAX_PACKAGE_WATTS * config.step_seconds, 50.0)
                kwargs["max_energy_range_uj"] = int(joules * 1e6)
            self.powercap = FakePowercap(sysfs_root, sockets=config.sockets, subdomains=("dram",),
                                         clock=clock, **kwargs)
        self.pods: NodePods | None = None
        if pods is not None:
            from wattfleet.sim.pods import NodePods  # lazy: needs the kubernetes extra (grpcio), only with pods
            self.pods = NodePods.on_node(pods, index, name, [g.uuid for g in self.gpus], cpus=32 * config.sockets)
        self.cpu_load = self.load.at(clock.now)
        self.sampler = self._new_sampler()
        self._gpu_baseline = [g.true_joules() for g in self.gpus]
        self._cpu_baseline = self._cpu_true_joules()

    # --- exporter ------------------------------------------------------------
    def _new_sampler(self) -> Sampler:
        """A fresh exporter over this node's hardware, as one starting on the machine would build it."""
        sensors: list[Sensor] = []
        if self.gpus:
            sensors.append(NvmlSensor(self.nvml))
        if self.powercap is not None:
            sensors.append(RaplSensor(self.sysfs_root or "/sys"))
        cores = 32 * self.config.sockets  # NodePods' cgroup tree has as many CPUs
        mem = _Memory(total=512 << 30, available=384 << 30)
        sensors.append(HostSensor(estimate=self.powercap is None, cpu_percent=lambda: 100.0 * self.cpu_load,
                                  virtual_memory=lambda: mem, cpu_count=cores))
        cls = Sampler if self.render else _UnrenderedSampler
        # The simulated machine never reboots: one boot id per node.
        state = StateFile(self.state_path, boot_id=f"sim-{self.name}") if self.state_path is not None else None
        sampler = cls(sensors, {"node": self.name, "cluster": self.config.cluster, "site": self.site},
                      interval=self.config.interval, clock=self.clock, wall=lambda: self.clock.now + self.skew,
                      version=__version__, state=state)
        if self.engines is not None and self.engines.engines:
            # The engines answer in microseconds; waiting up to 1.5 s (inside the sampler's 2 s deadline) makes
            # every tick's tokens line up with that tick's GPU energy, as on a real node.
            attach_engines(sampler, self.engines.configs(), self.engines.fetch, sync_wait=1.5)
        if self.pods is not None:
            attach_workloads(sampler, self.pods.sensor(self.clock))
        return sampler

    def restart_exporter(self) -> None:
        """The exporter process restarts: new sensors (the hardware keeps counting) and counters from 0,
        or, with ``state_path`` (``--state-file``), counters continued from the state its last sample saved."""
        self.sampler.stop()
        self.sampler = self._new_sampler()
        self.restarts += 1

    # --- one tick --------------------------------------------------------------
    def _apply_faults(self, elapsed: float) -> tuple[bool, bool]:
        """Set fault state for this instant; return (restart now, RAPL read errors now)."""
        restart = rapl_error = False
        failing: set[int] = set()
        lost = [False] * len(self.gpus)
        self.skew = 0.0
        for i, f in enumerate(self.faults):
            if f.kind == "exporter_restart":
                if elapsed >= f.at and i not in self._restart_done:
                    self._restart_done.add(i)
                    restart = True
                continue
            if not f.active(elapsed):
                continue
            targets = range(len(self.gpus)) if f.gpu is None else [f.gpu]
            if f.kind == "gpu_lost":
                for g in targets:
                    lost[g] = True
            elif f.kind == "sensor_error" and f.sensor == "nvml":
                failing.update(id(self.gpus[g]) for g in targets)
            elif f.kind == "sensor_error":
                rapl_error = True
            elif f.kind == "clock_skew":
                self.skew += f.seconds
        for gpu, now_lost in zip(self.gpus, lost, strict=True):
            if gpu.lost and not now_lost:
                gpu.driver_reload()  # a lost board comes back only after a reset: NVML's counter restarts
            gpu.lost = now_lost
        self.nvml.failing = failing
        return restart, rapl_error

    def tick(self, next_step: float) -> None:
        """Sample at the clock's current time, then set the draw until ``now + next_step``."""
        now = self.clock.now
        restart, rapl_error = self._apply_faults(now - self.clock.start)
        if self.powercap is not None:
            self.powercap.update()
            if rapl_error:
                for zone in self.powercap.zones.values():
                    (zone.path / "energy_uj").write_text("read error\n")
        if restart:
            self.restart_exporter()
        self.sampler.sample_once()
        self._set_draw(now, now + next_step)

    def _set_draw(self, t0: float, t1: float) -> None:
        """Set every board's and zone's power for ``[t0, t1)`` from the workload; the fakes integrate it."""
        for gpu, workload in zip(self.gpus, self.workloads, strict=True):
            watts, util = workload.advance(t0, t1)
            gpu.set_power(watts, util)
            gpu.memory_utilization = util * 0.6
            gpu.temperature = int(30 + 45 * watts / self.model.tdp_watts)
        if self.engines is not None:  # the engines count this step's work; their pages show it at the next tick
            self.engines.record(t0, t1, [w.last_phase_seconds for w in self.workloads])
        self.cpu_load = self.load.at(t0)
        if self.pods is not None:  # the pods' CPU time over [t0, t1), read by the exporter's next sample
            self.pods.run(t1 - t0, self.cpu_load)
        if self.powercap is not None:
            for zone in self.powercap.zones.values():
                shape = self.cpu_shape
                zone.power_watts = shape.dram_watts(self.cpu_load) if zone.name == "dram" \
                    else shape.package_watts(self.cpu_load)

    # --- ground truth -----------------------------------------------------------
    def _cpu_true_joules(self) -> float:
        if self.powercap is None:
            return 0.0
        return sum(z.joules for z in self.powercap.zones.values() if z.name.split("-")[0] in catalog.RAPL_IT_DOMAINS)

    def true_gpu_joules(self) -> float:
        """Energy all boards drew since the node's first sample."""
        return sum(g.true_joules() - b for g, b in zip(self.gpus, self._gpu_baseline, strict=True))

    def true_cpu_joules(self) -> float:
        """RAPL package + dram energy since the first sample (as of the last tick)."""
        return self._cpu_true_joules() - self._cpu_baseline

    def exporter_gpu_joules(self) -> float:
        """What this node's exporter counters say now (sum over GPUs)."""
        result = self.sampler.last_results.get("nvml")
        if result is None:
            return 0.0
        return sum(s.value for s in result.samples if s.metric == catalog.GPU_ENERGY.name)

    def snapshot(self) -> Snapshot | None:
        """What this node's exporter serves now; read at each request, since a restart replaces the sampler."""
        return self.sampler.snapshot

    def stop(self) -> None:
        self.sampler.stop()
        if self.pods is not None:
            self.pods.stop()
