"""Workload shapes for the fleet simulator: what each simulated GPU and socket draws, and when.

A fleet's power follows its load, so the simulator drives every node from a
real hourly cluster trace (``index,cpu_load`` CSV, load 0..1, hour ``h`` of the
trace played at hour ``h`` of the simulated year), shifted by a per-node phase
offset and jittered, and on top of it runs LLM-serving bursts on each GPU:
short compute-bound prefill bursts near TDP followed by longer memory-bound
decode stretches, separated by idle gaps sized so that the busy fraction
equals the trace's load. Everything is drawn from a seeded ``random.Random``
so that a run is reproducible.
"""

from __future__ import annotations

import csv
import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

# Inference phases (power as a fraction of the TDP-idle span; durations in seconds).
PREFILL_SPAN_FRACTION = (0.85, 1.0)
DECODE_SPAN_FRACTION = (0.40, 0.60)
PREFILL_SECONDS = (0.2, 1.5)
DECODE_SECONDS = (4.0, 20.0)
PREFILL_UTILIZATION, DECODE_UTILIZATION = 0.98, 0.75
# Steps at least this long use the phase mix's expected power instead of
# walking every burst (a 60 s backfill step spans several bursts anyway).
COARSE_STEP_SECONDS = 30.0
MIN_LOAD = 0.01


@dataclass(frozen=True)
class GpuModel:
    """A board type: NVML name, TDP and idle draw (docs/accounting.md, GPU boards: H100 700 W, A100 400 W)."""

    key: str
    nvml_name: str
    tdp_watts: float
    idle_watts: float
    memory_bytes: int

    @property
    def span_watts(self) -> float:
        return self.tdp_watts - self.idle_watts


GPU_MODELS: dict[str, GpuModel] = {
    "h100": GpuModel("h100", "NVIDIA H100 80GB HBM3", 700.0, 70.0, 80 << 30),
    "a100": GpuModel("a100", "NVIDIA A100-SXM4-40GB", 400.0, 50.0, 40 << 30),
}


def gpu_model(key: str) -> GpuModel:
    try:
        return GPU_MODELS[key.lower()]
    except KeyError:
        raise ValueError(f"unknown GPU model {key!r}; known: {', '.join(sorted(GPU_MODELS))}") from None


class TraceError(ValueError):
    """A workload trace file is malformed; the message names file, line and field."""


def load_trace(path: str | os.PathLike[str]) -> tuple[float, ...]:
    """Read an hourly ``index,cpu_load`` CSV; every load must be a number in [0, 1]."""
    path = Path(path)
    try:
        f = open(path, newline="")
    except OSError as exc:
        raise TraceError(f"{path}: cannot read workload trace: {exc.strerror or exc}") from exc
    values: list[float] = []
    with f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or "cpu_load" not in [h.strip() for h in header]:
            raise TraceError(f"{path}:1: header must name a 'cpu_load' column, got {header!r}")
        col = [h.strip() for h in header].index("cpu_load")
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if col >= len(row) or not row[col].strip():
                raise TraceError(f"{path}:{lineno}: field 'cpu_load' is missing")
            try:
                value = float(row[col])
            except ValueError:
                raise TraceError(f"{path}:{lineno}: field 'cpu_load' is not a number: {row[col]!r}") from None
            if not 0.0 <= value <= 1.0 or math.isnan(value):
                raise TraceError(f"{path}:{lineno}: field 'cpu_load' must be within 0..1, got {value}")
            values.append(value)
    if not values:
        raise TraceError(f"{path}: no rows after the header")
    return tuple(values)


def default_trace_path() -> Path | None:
    """``$WATTFLEET_WORKLOAD_TRACE``, else the shared Alibaba trace next to the checkout, if present."""
    env = os.environ.get("WATTFLEET_WORKLOAD_TRACE")
    if env:
        return Path(env)
    candidate = Path(__file__).resolve().parents[3] / "shared" / "data" / "workload-traces" \
        / "Alibaba_CPU_Data_Hourly_1.csv"
    return candidate if candidate.exists() else None


def diurnal_trace() -> tuple[float, ...]:
    """A synthetic year of daily load (used only when no trace file is available)."""
    return tuple(0.45 + 0.25 * math.sin(2 * math.pi * ((h % 24) - 9) / 24) for h in range(8760))


_YEAR_STARTS: list[tuple[float, float]] = []   # (year start, next year start), newest last


def hour_of_year(unix_seconds: float) -> float:
    """Fractional hours since 1 January 00:00 UTC of the timestamp's year."""
    for start, stop in _YEAR_STARTS:
        if start <= unix_seconds < stop:
            return (unix_seconds - start) / 3600.0
    year = datetime.fromtimestamp(unix_seconds, tz=timezone.utc).year
    start = datetime(year, 1, 1, tzinfo=timezone.utc).timestamp()
    _YEAR_STARTS.append((start, datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp()))
    return (unix_seconds - start) / 3600.0


class TraceLoad:
    """A node's load at a simulated time: the trace, shifted by ``offset_hours``, interpolated."""

    def __init__(self, trace: Sequence[float], offset_hours: float = 0.0, scale: float = 1.0) -> None:
        if not trace:
            raise ValueError("workload trace is empty")
        self.trace = tuple(trace)
        self.offset_hours = offset_hours
        self.scale = scale

    def at(self, unix_seconds: float) -> float:
        h = hour_of_year(unix_seconds) + self.offset_hours
        i = math.floor(h)
        frac = h - i
        n = len(self.trace)
        a, b = self.trace[i % n], self.trace[(i + 1) % n]
        return min(max((a + (b - a) * frac) * self.scale, 0.0), 1.0)


class PrefillShare(Protocol):
    """Prefill's share of a GPU's busy time at a simulated moment (see wattfleet.sim.engines.HourlyValue)."""

    def at(self, unix_seconds: float) -> float: ...


class GpuWorkload:
    """Inference on one GPU: idle gaps, prefill bursts and decode stretches.

    :meth:`advance` returns the average power and utilization over a step,
    so the fake board's energy (power x time) equals the sum of the phases
    even when a burst is shorter than the sampling interval.
    """

    def __init__(self, model: GpuModel, load: TraceLoad, rng: random.Random, noise: float = 0.03,
                 prefill_share: PrefillShare | None = None) -> None:
        self.model = model
        # Prefill's share of the busy time at a moment (an engine's prompt mix); None: the bursts' mean share.
        self.prefill_share = prefill_share
        self.last_phase_seconds = (0.0, 0.0)   # (prefill s, decode s) of the last advance()
        self.load = load
        self.rng = rng
        self.noise = noise
        self.phase = "idle"
        self.phase_end: float | None = None
        self.phase_watts = model.idle_watts
        self.phase_util = 0.0
        mean_pre = sum(PREFILL_SECONDS) / 2
        mean_dec = sum(DECODE_SECONDS) / 2
        self._mean_busy = mean_pre + mean_dec
        span = model.span_watts
        self._busy_watts = model.idle_watts + span * (
            mean_pre * sum(PREFILL_SPAN_FRACTION) / 2 + mean_dec * sum(DECODE_SPAN_FRACTION) / 2) / self._mean_busy
        self._busy_util = (mean_pre * PREFILL_UTILIZATION + mean_dec * DECODE_UTILIZATION) / self._mean_busy
        self._mean_prefill_share = mean_pre / self._mean_busy

    def _next_phase(self, t: float) -> None:
        rng, m = self.rng, self.model
        if self.phase == "prefill":
            self.phase, duration = "decode", rng.uniform(*DECODE_SECONDS)
            self.phase_watts = m.idle_watts + m.span_watts * rng.uniform(*DECODE_SPAN_FRACTION)
            self.phase_util = DECODE_UTILIZATION
        elif self.phase == "decode":
            load = max(self.load.at(t), MIN_LOAD)
            gap = rng.expovariate(load / (self._mean_busy * (1.0 - load))) if load < 1.0 else 0.0
            self.phase, duration = "idle", gap
            self.phase_watts, self.phase_util = m.idle_watts, 0.0
        else:
            self.phase, duration = "prefill", rng.uniform(*PREFILL_SECONDS)
            self.phase_watts = m.idle_watts + m.span_watts * rng.uniform(*PREFILL_SPAN_FRACTION)
            self.phase_util = PREFILL_UTILIZATION
        self.phase_end = t + duration

    def advance(self, t0: float, t1: float) -> tuple[float, float]:
        """Average (watts, utilization) over ``[t0, t1)``."""
        dt = t1 - t0
        if dt <= 0:
            self.last_phase_seconds = (0.0, 0.0)
            return self.phase_watts, self.phase_util
        if dt >= COARSE_STEP_SECONDS:
            return self._expected(t0, t1)
        if self.phase_end is None:
            self.phase_end = t0
        joules = busy = 0.0
        seconds = {"prefill": 0.0, "decode": 0.0, "idle": 0.0}
        t = t0
        while t < t1:
            if self.phase_end <= t:
                self._next_phase(t)
                continue
            end = min(self.phase_end, t1)
            joules += self.phase_watts * (end - t)
            busy += self.phase_util * (end - t)
            seconds[self.phase] += end - t
            t = end
        self.last_phase_seconds = (seconds["prefill"], seconds["decode"])
        watts = joules / dt * (1.0 + self.rng.gauss(0.0, self.noise))
        return min(max(watts, 0.0), self.model.tdp_watts), min(busy / dt, 1.0)

    def _expected(self, t0: float, t1: float) -> tuple[float, float]:
        load = self.load.at((t0 + t1) / 2)
        # Fewer bursts per step means more spread; sqrt(bursts) keeps the variance honest.
        bursts = max((t1 - t0) / (self._mean_busy / max(load, MIN_LOAD)), 1.0)
        busy = min(max(load + self.rng.gauss(0.0, 0.25 * load / math.sqrt(bursts)), 0.0), 1.0)
        if self.prefill_share is None:
            share = self._mean_prefill_share
            busy_watts, busy_util = self._busy_watts, self._busy_util
        else:
            share = min(max(self.prefill_share.at((t0 + t1) / 2), 0.0), 1.0)
            span = self.model.span_watts
            busy_watts = self.model.idle_watts + span * (share * sum(PREFILL_SPAN_FRACTION) / 2
                                                         + (1.0 - share) * sum(DECODE_SPAN_FRACTION) / 2)
            busy_util = share * PREFILL_UTILIZATION + (1.0 - share) * DECODE_UTILIZATION
        self.last_phase_seconds = (busy * (t1 - t0) * share, busy * (t1 - t0) * (1.0 - share))
        watts = self.model.idle_watts + busy * (busy_watts - self.model.idle_watts)
        watts *= 1.0 + self.rng.gauss(0.0, self.noise / 2)
        self.phase, self.phase_end = "idle", None
        return min(max(watts, 0.0), self.model.tdp_watts), busy * busy_util


@dataclass(frozen=True)
class CpuShape:
    """Per-socket RAPL draw as a function of node load (a dual-socket server: 60-210 W package)."""

    package_idle_watts: float = 60.0
    package_busy_watts: float = 150.0
    dram_idle_watts: float = 8.0
    dram_busy_watts: float = 12.0

    def package_watts(self, load: float) -> float:
        return self.package_idle_watts + load * self.package_busy_watts

    def dram_watts(self, load: float) -> float:
        return self.dram_idle_watts + load * self.dram_busy_watts
