"""Host utilization and memory through psutil, and the estimated CPU power model.

When no RAPL zone is readable (VMs, locked-down hosts, ARM), CPU and memory
energy are *estimated* the way Cloud Carbon Footprint does: per logical CPU,
``idle + utilization x (max - idle)`` watts, plus watts per GB of memory.
The coefficients are flags; the defaults are CCF's published averages for
AWS (0.71 W idle / 3.5 W max per vCPU, 0.392 W per GB). Every series this
model produces says ``method="estimated"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from wattfleet.core import catalog
from wattfleet.exporter.counters import PowerIntegrator
from wattfleet.exporter.sensors.base import SensorResult


@dataclass(frozen=True)
class CpuPowerModel:
    """Linear CPU power model; the defaults are Cloud Carbon Footprint's AWS averages."""

    idle_watts_per_core: float = 0.71
    max_watts_per_core: float = 3.5
    memory_watts_per_gb: float = 0.392

    def cpu_watts(self, utilization: float, cores: int) -> float:
        u = min(max(utilization, 0.0), 1.0)
        return cores * (self.idle_watts_per_core + u * (self.max_watts_per_core - self.idle_watts_per_core))

    def memory_watts(self, total_bytes: float) -> float:
        return self.memory_watts_per_gb * total_bytes / 1e9


class HostSensor:
    """CPU utilization and memory; with ``estimate=True`` also estimated CPU/DRAM energy."""

    name = "host"

    def __init__(self, estimate: bool, model: CpuPowerModel | None = None,
                 cpu_percent: Callable[[], float] | None = None,
                 virtual_memory: Callable[[], Any] | None = None,
                 cpu_count: int | None = None) -> None:
        self.estimate = estimate
        self.model = model or CpuPowerModel()
        self._cpu_percent = cpu_percent or (lambda: psutil.cpu_percent(interval=None))
        self._virtual_memory = virtual_memory or psutil.virtual_memory
        self.cores = cpu_count or psutil.cpu_count(logical=True) or 1
        self._cpu_percent()  # prime psutil: its first call always returns 0.0
        self._cpu = PowerIntegrator()
        self._dram = PowerIntegrator()

    def energy_counters(self) -> dict[str, PowerIntegrator]:
        """The estimated package and dram integrals (when estimating), for ``--state-file``."""
        return {"package": self._cpu, "dram": self._dram} if self.estimate else {}

    def sample(self, now: float) -> SensorResult:
        result = SensorResult()
        utilization = self._cpu_percent() / 100.0
        mem = self._virtual_memory()
        result.add(catalog.CPU_UTILIZATION.name, utilization)
        result.add(catalog.CPU_CORES.name, self.cores)
        result.add(catalog.MEMORY_USED.name, mem.total - mem.available)
        result.add(catalog.MEMORY_TOTAL.name, mem.total)
        if self.estimate:
            for domain, integrator, watts in (
                    ("package", self._cpu, self.model.cpu_watts(utilization, self.cores)),
                    ("dram", self._dram, self.model.memory_watts(mem.total))):
                integrator.update(watts, now)
                labels = {"socket": "all", "domain": domain, "method": catalog.METHOD_ESTIMATED}
                result.add(catalog.CPU_ENERGY.name, integrator.joules, source="cpu_model", **labels)
                result.add(catalog.CPU_POWER.name, watts, **labels)
        return result

    def close(self) -> None:
        pass
