"""NVIDIA GPU readings through NVML (the ``pynvml`` module of ``nvidia-ml-py``).

Energy comes from ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since
driver load, Volta and newer); where that is not supported we integrate
``nvmlDeviceGetPowerUsage`` and say so in the ``source`` label. A GPU that
falls off the bus (``GPU_IS_LOST``, Xid 79 and friends) is marked down and
retried later; the other GPUs keep reporting. A driver reload restarts the
hardware counter at 0, which :class:`EnergyCounter` counts as a reset.

The NVML module is injected so that tests and the fleet simulator can drive
the same code with :mod:`wattfleet.sim.fake_nvml`.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeAlias

from wattfleet.core import catalog
from wattfleet.exporter.counters import EnergyCounter, PowerIntegrator
from wattfleet.exporter.sensors.base import SensorResult, SensorUnavailable

log = logging.getLogger(__name__)

# NVML return codes (nvml.h); pynvml maps each to an NVMLError subclass.
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25
# A driver (or nvidia-ml-py) without a call answers these: the call is absent, not failing.
_ABSENT = (NVML_ERROR_FUNCTION_NOT_FOUND, NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_ARGUMENT_VERSION_MISMATCH)

_REASONS = {
    NVML_ERROR_NO_PERMISSION: "no_permission",
    NVML_ERROR_GPU_IS_LOST: "gpu_lost",
    NVML_ERROR_RESET_REQUIRED: "gpu_lost",
    NVML_ERROR_NOT_FOUND: "not_found",
}
_LOST = (NVML_ERROR_GPU_IS_LOST, NVML_ERROR_RESET_REQUIRED)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Gpu:
    index: int
    handle: Any
    uuid: str
    model: str
    mig_mode: str = "disabled"
    up: bool = True
    energy_counter: EnergyCounter = field(default_factory=lambda: EnergyCounter(scale=1e-3))
    power_limit_watts: float | None = None
    power_integral: PowerIntegrator | None = None   # set when the energy counter is unsupported
    unsupported: set[str] = field(default_factory=set)
    temperature_v: bool | None = None  # nvmlDeviceGetTemperatureV works (True), is absent (False), untried (None)

    @property
    def labels(self) -> dict[str, str]:
        return {"gpu": str(self.index), "uuid": self.uuid, "gpu_model": self.model}

    @property
    def joules(self) -> float:
        return self.power_integral.joules if self.power_integral is not None else self.energy_counter.joules


# What the NVML code calls: the ``pynvml`` module (nvidia-ml-py ships no type information, so its functions are
# Any anyway) or a stand-in with the same functions, such as wattfleet.sim.fake_nvml.FakeNvml.
Nvml: TypeAlias = Any


def load_nvml() -> ModuleType:
    """Import the real ``pynvml``; SensorUnavailable when the package is absent."""
    try:
        return importlib.import_module("pynvml")
    except ImportError as exc:  # pragma: no cover - nvidia-ml-py is a dependency
        raise SensorUnavailable(f"nvidia-ml-py is not installed: {exc}") from exc


class NvmlSensor:
    """Samples every GPU NVML reports; unavailable when NVML cannot start."""

    name = "nvml"
    # NVML's total-energy counter is millijoules since the driver loaded: after a reboot all of it is new.
    counters_start_at_zero = True

    def __init__(self, nvml: Nvml | None = None, retry_lost_every: int = 30, max_watts: float = 5000.0) -> None:
        """``max_watts``: the most one board can draw; a counter reading implying more is rejected."""
        self.nvml = nvml if nvml is not None else load_nvml()
        self.retry_lost_every = retry_lost_every
        self.max_watts = max_watts
        self._samples_taken = 0
        self._entered = time.monotonic()  # when the current sample() began, on the real clock
        try:
            self.nvml.nvmlInit()
        except self.nvml.NVMLError as exc:
            code = getattr(exc, "value", None)
            if code == NVML_ERROR_LIBRARY_NOT_FOUND:
                raise SensorUnavailable("NVML library not found (no NVIDIA driver on this node)") from exc
            if code == NVML_ERROR_DRIVER_NOT_LOADED:
                raise SensorUnavailable("NVIDIA driver not loaded") from exc
            raise SensorUnavailable(f"NVML failed to start: {exc}") from exc
        try:
            self.driver_version = _text(self.nvml.nvmlSystemGetDriverVersion())
        except self.nvml.NVMLError:
            self.driver_version = "unknown"
        self.gpus: list[Gpu] = []
        for index in range(self.nvml.nvmlDeviceGetCount()):
            try:
                self.gpus.append(self._open(index))
            except self.nvml.NVMLError as exc:
                log.warning("GPU %d unusable at start: %s", index, exc)
        if not self.gpus:
            self.nvml.nvmlShutdown()
            raise SensorUnavailable("NVML started but reports no usable GPU")

    def _open(self, index: int) -> Gpu:
        handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
        gpu = Gpu(index, handle, _text(self.nvml.nvmlDeviceGetUUID(handle)),
                  _text(self.nvml.nvmlDeviceGetName(handle)))
        gpu.energy_counter.max_watts = self.max_watts
        try:
            current, _pending = self.nvml.nvmlDeviceGetMigMode(handle)
            gpu.mig_mode = "enabled" if current else "disabled"
        except self.nvml.NVMLError:
            gpu.mig_mode = "unsupported"
        try:
            self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except self.nvml.NVMLError as exc:
            if getattr(exc, "value", None) != NVML_ERROR_NOT_SUPPORTED:
                raise
            log.info("GPU %d (%s) has no energy counter; integrating power instead", index, gpu.model)
            gpu.power_integral = PowerIntegrator(max_watts=self.max_watts)
        return gpu

    def energy_counters(self) -> dict[str, EnergyCounter | PowerIntegrator]:
        """Counters by GPU UUID (stable across restarts and re-indexing), for ``--state-file``."""
        return {g.uuid: g.power_integral if g.power_integral is not None else g.energy_counter for g in self.gpus}

    def energy_by_gpu(self) -> dict[str, float]:
        """Cumulative joules per GPU index, for attribution (inference phases)."""
        return {str(g.index): g.joules for g in self.gpus}

    def sample(self, now: float) -> SensorResult:
        result = SensorResult()
        self._samples_taken += 1
        self._entered = time.monotonic()
        retry = self.retry_lost_every and self._samples_taken % self.retry_lost_every == 0
        for gpu in self.gpus:
            if not gpu.up and retry:
                self._try_recover(gpu)
            if gpu.up:
                try:
                    self._sample_gpu(gpu, now, result)
                except self.nvml.NVMLError as exc:
                    code = getattr(exc, "value", None)
                    result.errors.append(_REASONS.get(code, "nvml_error") if isinstance(code, int) else "nvml_error")
                    if code in _LOST:
                        log.warning("GPU %d (%s) lost: %s; other GPUs keep reporting", gpu.index, gpu.uuid, exc)
                        gpu.up = False
                        if gpu.power_integral is not None:
                            gpu.power_integral.rebaseline()
            self._emit_static(gpu, result)
        return result

    def _try_recover(self, gpu: Gpu) -> None:
        try:
            handle = self.nvml.nvmlDeviceGetHandleByIndex(gpu.index)
            if _text(self.nvml.nvmlDeviceGetUUID(handle)) != gpu.uuid:
                return  # another board took the index; do not mix its energy into this series
        except self.nvml.NVMLError:
            return
        log.info("GPU %d (%s) answers again", gpu.index, gpu.uuid)
        gpu.handle, gpu.up = handle, True
        # Recovering from GPU_IS_LOST takes a GPU reset, which restarts NVML's energy counter.
        gpu.energy_counter.suspect_reset(gpu.power_limit_watts)

    def _optional(self, gpu: Gpu, key: str, fn: Any, *args: Any) -> Any:
        """Call an NVML getter that some boards do not support; None when unsupported."""
        if key in gpu.unsupported:
            return None
        try:
            return fn(gpu.handle, *args)
        except self.nvml.NVMLError as exc:
            if getattr(exc, "value", None) == NVML_ERROR_NOT_SUPPORTED:
                gpu.unsupported.add(key)
                return None
            raise

    def _temperature(self, gpu: Gpu) -> Any:
        """GPU core temperature through ``nvmlDeviceGetTemperatureV`` (nvml.h deprecates
        ``nvmlDeviceGetTemperature``; CUDA 14 drivers drop it), falling back to the old call where the driver
        or nvidia-ml-py lacks the versioned one (FUNCTION_NOT_FOUND, NOT_SUPPORTED, a struct version it does
        not know). Which one works is found once per GPU; None when the board has no temperature at all."""
        if "temperature" in gpu.unsupported:
            return None
        versioned = getattr(self.nvml, "nvmlDeviceGetTemperatureV", None)
        if gpu.temperature_v is not False and versioned is not None:
            try:
                temp = versioned(gpu.handle, self.nvml.NVML_TEMPERATURE_GPU)
            except self.nvml.NVMLError as exc:
                if getattr(exc, "value", None) not in _ABSENT:
                    raise
                log.info("GPU %d (%s): nvmlDeviceGetTemperatureV unavailable (%s); using nvmlDeviceGetTemperature",
                         gpu.index, gpu.uuid, exc)
            else:
                gpu.temperature_v = True
                return temp
        gpu.temperature_v = False
        try:
            return self._optional(gpu, "temperature", self.nvml.nvmlDeviceGetTemperature,
                                  self.nvml.NVML_TEMPERATURE_GPU)
        except self.nvml.NVMLError as exc:
            if getattr(exc, "value", None) != NVML_ERROR_FUNCTION_NOT_FOUND:
                raise
            gpu.unsupported.add("temperature")  # neither call on this driver: no temperature, not an error
            return None

    def _sample_gpu(self, gpu: Gpu, now: float, result: SensorResult) -> None:
        nv, labels = self.nvml, gpu.labels
        power_mw = self._optional(gpu, "power", nv.nvmlDeviceGetPowerUsage)
        if gpu.power_integral is None:
            rejected = gpu.energy_counter.rejected
            raw = int(nv.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
            # Stamped when it was read, not when the sample began: a call that hung for minutes (a GPU
            # falling off the bus) returns a counter that covers those minutes, and the plausibility
            # bound must see them, or the outage's energy would be rejected as too fast.
            gpu.energy_counter.update(raw, now + (time.monotonic() - self._entered))
            if gpu.energy_counter.rejected != rejected:
                log.warning("GPU %d (%s): energy counter reading not physical (above %g W or negative); "
                            "rejected, not counted", gpu.index, gpu.uuid, gpu.energy_counter.max_watts)
                result.errors.append("implausible_reading")
        elif power_mw is not None:
            gpu.power_integral.update(power_mw / 1000.0, now)
        if power_mw is not None:
            result.add(catalog.GPU_POWER.name, power_mw / 1000.0, **labels)
        limit_mw = self._optional(gpu, "power_limit", nv.nvmlDeviceGetEnforcedPowerLimit)
        if limit_mw is not None:
            gpu.power_limit_watts = limit_mw / 1000.0
            result.add(catalog.GPU_POWER_LIMIT.name, gpu.power_limit_watts, **labels)
        util = self._optional(gpu, "utilization", nv.nvmlDeviceGetUtilizationRates)
        if util is not None:
            result.add(catalog.GPU_UTILIZATION.name, util.gpu / 100.0, **labels)
            result.add(catalog.GPU_MEMORY_UTILIZATION.name, util.memory / 100.0, **labels)
        mem = self._optional(gpu, "memory", nv.nvmlDeviceGetMemoryInfo)
        if mem is not None:
            result.add(catalog.GPU_MEMORY_USED.name, mem.used, **labels)
        temp = self._temperature(gpu)
        if temp is not None:
            result.add(catalog.GPU_TEMPERATURE.name, temp, **labels)
        sm = self._optional(gpu, "sm_clock", nv.nvmlDeviceGetClockInfo, nv.NVML_CLOCK_SM)
        if sm is not None:
            result.add(catalog.GPU_SM_CLOCK.name, sm * 1e6, **labels)
        memclk = self._optional(gpu, "mem_clock", nv.nvmlDeviceGetClockInfo, nv.NVML_CLOCK_MEM)
        if memclk is not None:
            result.add(catalog.GPU_MEMORY_CLOCK.name, memclk * 1e6, **labels)
        if gpu.mig_mode == "enabled":
            self._sample_mig(gpu, result)

    def _sample_mig(self, gpu: Gpu, result: SensorResult) -> None:
        nv = self.nvml
        for i in range(nv.nvmlDeviceGetMaxMigDeviceCount(gpu.handle)):
            try:
                mig = nv.nvmlDeviceGetMigDeviceHandleByIndex(gpu.handle, i)
            except nv.NVMLError as exc:
                if getattr(exc, "value", None) == NVML_ERROR_NOT_FOUND:
                    continue  # slot not populated
                raise
            mig_uuid = _text(nv.nvmlDeviceGetUUID(mig))
            result.add(catalog.GPU_MIG_DEVICE.name, 1, **gpu.labels, mig_uuid=mig_uuid,
                       gpu_instance=str(nv.nvmlDeviceGetGpuInstanceId(mig)),
                       compute_instance=str(nv.nvmlDeviceGetComputeInstanceId(mig)))
            result.add(catalog.GPU_MIG_MEMORY_USED.name, nv.nvmlDeviceGetMemoryInfo(mig).used,
                       **gpu.labels, mig_uuid=mig_uuid)

    def _emit_static(self, gpu: Gpu, result: SensorResult) -> None:
        labels = gpu.labels
        source = "nvml_power_integral" if gpu.power_integral is not None else "nvml_energy_counter"
        result.add(catalog.GPU_ENERGY.name, gpu.joules, method=catalog.METHOD_MEASURED, source=source, **labels)
        result.add(catalog.GPU_UP.name, 1 if gpu.up else 0, **labels)
        result.add(catalog.GPU_INFO.name, 1, driver_version=self.driver_version, mig_mode=gpu.mig_mode, **labels)
        result.corrections[("nvml", gpu.uuid)] = (gpu.energy_counter.wraps, gpu.energy_counter.resets)

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError:
            pass
