"""A stand-in for the ``pynvml`` module with NVML's semantics and errors.

Used by tests, benchmarks, the demo and the fleet simulator to drive the real
:class:`~wattfleet.exporter.sensors.nvml.NvmlSensor` code without a GPU. It
raises pynvml's own exception classes with NVML's return codes, so the sensor
cannot tell it from the real library: a lost GPU raises GPU_IS_LOST on every
call, boards without an energy counter raise NOT_SUPPORTED, a driver reload
restarts the millijoule counter at 0, and a missing library fails ``nvmlInit``
with LIBRARY_NOT_FOUND. Temperature is served through ``nvmlDeviceGetTemperatureV``
(versioned struct, drivers since R565) and the deprecated ``nvmlDeviceGetTemperature``;
``temperature_api`` imitates drivers that have only one of them, the missing
one failing with FUNCTION_NOT_FOUND as the real library does.

Energy is the exact integral of the power set over time (piecewise constant),
so ``true_joules()`` is the ground truth the exporter's counters are checked
against.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pynvml

NVMLError = pynvml.NVMLError
NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
NVML_CLOCK_SM = pynvml.NVML_CLOCK_SM
NVML_CLOCK_MEM = pynvml.NVML_CLOCK_MEM

NOT_SUPPORTED, NOT_FOUND, LIBRARY_NOT_FOUND, FUNCTION_NOT_FOUND, GPU_IS_LOST, ARGUMENT_VERSION_MISMATCH = (
    3, 6, 12, 13, 15, 25)
# nvml.h's nvmlTemperature_v1: NVML_STRUCT_VERSION(Temperature, 1) = sizeof(nvmlTemperature_v1_t) | 1 << 24.
NVML_TEMPERATURE_V1 = getattr(pynvml, "nvmlTemperature_v1", 12 | 1 << 24)
# Which temperature calls a simulated driver has: "both" (current drivers), "legacy" (drivers before
# nvmlDeviceGetTemperatureV), "v" (drivers after nvmlDeviceGetTemperature's removal, CUDA 14).
TEMPERATURE_APIS = ("both", "legacy", "v")


def _set_event() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


@dataclass
class Utilization:
    gpu: int
    memory: int


@dataclass
class MemoryInfo:
    total: int
    used: int
    free: int


@dataclass
class FakeMig:
    uuid: str
    gpu_instance: int
    compute_instance: int
    memory_used: int = 1 << 30


@dataclass
class FakeGpu:
    """One simulated board. Change ``power_watts`` with :meth:`set_power`."""

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    power_watts: float = 75.0
    power_limit_watts: float = 700.0
    utilization: float = 0.0
    memory_utilization: float = 0.0
    temperature: int = 35
    sm_clock_mhz: int = 1980
    mem_clock_mhz: int = 2619
    memory_total: int = 80 << 30
    memory_used: int = 1 << 30
    has_energy_counter: bool = True
    unsupported: set[str] = field(default_factory=set)
    mig: list[FakeMig] | None = None
    clock: Callable[[], float] = time.monotonic
    lost: bool = False
    # Cleared: every NVML call on this board blocks until it is set again, as calls do
    # for minutes when a board falls off the bus (see :meth:`hang` / :meth:`unhang`).
    responsive: threading.Event = field(default_factory=lambda: _set_event(), repr=False)
    _joules: float = 0.0          # true energy since exporter-visible counter start
    _counter_base: float = 0.0    # true energy at the last driver reload
    _since: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def hang(self) -> None:
        """From now on NVML calls on this board block (a hung driver), until :meth:`unhang`."""
        self.responsive.clear()

    def unhang(self) -> None:
        self.responsive.set()

    def _integrate(self) -> None:
        now = self.clock()
        if self._since is not None:
            self._joules += self.power_watts * (now - self._since)
        self._since = now

    def set_power(self, watts: float, utilization: float | None = None) -> None:
        with self._lock:
            self._integrate()
            self.power_watts = watts
            if utilization is not None:
                self.utilization = utilization

    def true_joules(self) -> float:
        """Ground truth: all energy the board drew since it was created."""
        with self._lock:
            self._integrate()
            return self._joules

    def counter_mj(self) -> int:
        with self._lock:
            self._integrate()
            return int((self._joules - self._counter_base) * 1000)

    def driver_reload(self) -> None:
        """The driver reloaded: NVML's energy counter restarts at 0."""
        with self._lock:
            self._integrate()
            self._counter_base = self._joules


class FakeNvml:
    """Module-like object exposing the subset of pynvml that wattfleet calls."""

    NVMLError = NVMLError
    NVML_TEMPERATURE_GPU = NVML_TEMPERATURE_GPU
    NVML_CLOCK_SM = NVML_CLOCK_SM
    NVML_CLOCK_MEM = NVML_CLOCK_MEM

    def __init__(self, gpus: list[FakeGpu] | None = None, library_missing: bool = False,
                 driver_version: str = "550.54.15", temperature_api: str = "both") -> None:
        if temperature_api not in TEMPERATURE_APIS:
            raise ValueError(f"temperature_api must be one of {TEMPERATURE_APIS}, got {temperature_api!r}")
        self.temperature_api = temperature_api
        self.temperature_calls = {"v": 0, "legacy": 0}
        self.gpus = gpus if gpus is not None else []
        self.library_missing = library_missing
        self.driver_version = driver_version
        self.initialized = False
        self.calls = 0

    @classmethod
    def with_gpus(cls, count: int, watts: float = 75.0, clock: Callable[[], float] = time.monotonic,
                  name: str = "NVIDIA H100 80GB HBM3") -> FakeNvml:
        return cls([FakeGpu(uuid=f"GPU-fake-{i:04d}-0000-0000-0000-000000000000", name=name,
                            power_watts=watts, clock=clock) for i in range(count)])

    # --- lifecycle ---------------------------------------------------------
    def nvmlInit(self) -> None:
        if self.library_missing:
            raise NVMLError(LIBRARY_NOT_FOUND)
        self.initialized = True
        for gpu in self.gpus:
            gpu.true_joules()  # start integrating from now

    def nvmlShutdown(self) -> None:
        self.initialized = False

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if not 0 <= index < len(self.gpus):
            raise NVMLError(2)  # INVALID_ARGUMENT
        gpu = self.gpus[index]
        self._check(gpu)
        return gpu

    def _check(self, gpu: FakeGpu, feature: str | None = None) -> None:
        self.calls += 1
        gpu.responsive.wait()
        if not self.initialized:
            raise NVMLError(1)  # UNINITIALIZED
        if gpu.lost:
            raise NVMLError(GPU_IS_LOST)
        if feature is not None and feature in gpu.unsupported:
            raise NVMLError(NOT_SUPPORTED)

    # --- per-device getters -----------------------------------------------
    def nvmlDeviceGetUUID(self, h: FakeGpu | FakeMig) -> str:
        if isinstance(h, FakeMig):
            return h.uuid
        self._check(h)
        return h.uuid

    def nvmlDeviceGetName(self, h: FakeGpu) -> str:
        self._check(h)
        return h.name

    def nvmlDeviceGetTotalEnergyConsumption(self, h: FakeGpu) -> int:
        self._check(h)
        if not h.has_energy_counter:
            raise NVMLError(NOT_SUPPORTED)
        return h.counter_mj()

    def nvmlDeviceGetPowerUsage(self, h: FakeGpu) -> int:
        self._check(h, "power")
        return int(h.power_watts * 1000)

    def nvmlDeviceGetEnforcedPowerLimit(self, h: FakeGpu) -> int:
        self._check(h, "power_limit")
        return int(h.power_limit_watts * 1000)

    def nvmlDeviceGetUtilizationRates(self, h: FakeGpu) -> Utilization:
        self._check(h, "utilization")
        return Utilization(int(round(h.utilization * 100)), int(round(h.memory_utilization * 100)))

    def nvmlDeviceGetMemoryInfo(self, h: FakeGpu | FakeMig) -> MemoryInfo:
        if isinstance(h, FakeMig):
            return MemoryInfo(0, h.memory_used, 0)
        self._check(h, "memory")
        return MemoryInfo(h.memory_total, h.memory_used, h.memory_total - h.memory_used)

    def nvmlDeviceGetTemperature(self, h: FakeGpu, sensor: int) -> int:
        """Deprecated (nvml.h), gone from drivers of CUDA 14."""
        self.temperature_calls["legacy"] += 1
        if self.temperature_api == "v":
            raise NVMLError(FUNCTION_NOT_FOUND)
        self._check(h, "temperature")
        return h.temperature

    def nvmlDeviceGetTemperatureV(self, h: FakeGpu, sensor: int, version: int = NVML_TEMPERATURE_V1) -> int:
        """pynvml fills an nvmlTemperature_v1_t (version, sensorType) and returns its ``temperature``; a
        driver without the symbol fails with FUNCTION_NOT_FOUND, an unknown struct version with
        ARGUMENT_VERSION_MISMATCH."""
        self.temperature_calls["v"] += 1
        if self.temperature_api == "legacy":
            raise NVMLError(FUNCTION_NOT_FOUND)
        if version != NVML_TEMPERATURE_V1:
            raise NVMLError(ARGUMENT_VERSION_MISMATCH)
        self._check(h, "temperature")
        return h.temperature

    def nvmlDeviceGetClockInfo(self, h: FakeGpu, clock_type: int) -> int:
        self._check(h, "clocks")
        return h.sm_clock_mhz if clock_type == NVML_CLOCK_SM else h.mem_clock_mhz

    def nvmlDeviceGetMigMode(self, h: FakeGpu) -> list[int]:
        self._check(h)
        if h.mig is None:
            raise NVMLError(NOT_SUPPORTED)
        return [1, 1] if h.mig else [0, 0]

    def nvmlDeviceGetMaxMigDeviceCount(self, h: FakeGpu) -> int:
        self._check(h)
        return 7 if h.mig else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: FakeGpu, index: int) -> FakeMig:
        self._check(h)
        if not h.mig or index >= len(h.mig):
            raise NVMLError(NOT_FOUND)
        return h.mig[index]

    def nvmlDeviceGetGpuInstanceId(self, h: FakeMig) -> int:
        return h.gpu_instance

    def nvmlDeviceGetComputeInstanceId(self, h: FakeMig) -> int:
        return h.compute_instance
