"""Splitting an interval's GPU energy between prefill, decode and idle by phase time.

TGI (forward duration) and SGLang (GPU execution time, with its device timer)
report how long their forward passes took per phase; over one interval the
GPUs' energy is split in proportion to those times (SGLang's data-parallel
ranks each count their own time: the interval is counted once per rank), and
the part of the interval in neither phase (no batch, or between forward
passes) is ``idle``.
The parts always add up to the measured energy, so no joule is created or lost.
Equal power in both phases is the assumption; it is why the method is named in
the ``method`` label rather than presented as a measurement.

Energy an engine marks itself (``method="marked"``) is the engine's claim; it
is capped by what its GPUs drew over the same interval.
"""

from __future__ import annotations

from typing import TypeVar

from wattfleet.core import catalog

K = TypeVar("K")


def split_by_phase_time(joules: float, seconds: float, busy_seconds: dict[str, float]) -> dict[str, float]:
    """``joules`` drawn over ``seconds``, of which ``busy_seconds[phase]`` in each phase.

    Busy time above the interval (scrape and sample clocks drift by a few
    milliseconds) stretches the interval rather than producing negative idle.
    """
    busy = {phase: max(0.0, busy_seconds.get(phase, 0.0)) for phase in catalog.PHASES}
    total = sum(busy.values())
    out = {phase: 0.0 for phase in catalog.PHASES}
    out[catalog.PHASE_IDLE] = 0.0
    if joules <= 0:
        return out
    if total <= 0:
        out[catalog.PHASE_IDLE] = joules
        return out
    span = max(seconds, total)
    for phase, b in busy.items():
        out[phase] = joules * b / span
    out[catalog.PHASE_IDLE] = joules - sum(out[p] for p in catalog.PHASES)
    return out


# Marked energy is read by the serving process at scrape time, the GPUs by the exporter at tick time: the two
# intervals are shifted by milliseconds, so the cap allows this much more than the GPUs' measured energy.
MARKED_TOLERANCE_RATIO = 0.05
MARKED_TOLERANCE_JOULES_PER_GPU = 10.0


def marked_energy_cap(measured_joules: float, gpus: int) -> float:
    """The most marked energy an interval may add: what the engine's GPUs drew, plus the timing tolerance."""
    return max(0.0, measured_joules) * (1.0 + MARKED_TOLERANCE_RATIO) + MARKED_TOLERANCE_JOULES_PER_GPU * gpus


def cap_to_measured(claimed: dict[K, float], cap_joules: float) -> tuple[dict[K, float], float]:
    """``claimed`` joules scaled down to ``cap_joules`` in total when above it; returns them and the excess.

    Which phase overclaimed is unknown, so every phase keeps its share.
    """
    total = sum(claimed.values())
    if total <= cap_joules:
        return dict(claimed), 0.0
    scale = cap_joules / total if total > 0 else 0.0
    return {k: v * scale for k, v in claimed.items()}, total - cap_joules
