"""Splitting an interval's GPU energy between prefill, decode and idle by phase time.

TGI reports how long its forward passes took per phase; over one interval the
GPUs' energy is split in proportion to those times, and the part of the
interval in neither phase (no batch, or between forward passes) is ``idle``.
The parts always add up to the measured energy, so no joule is created or lost.
Equal power in both phases is the assumption; it is why the method is named in
the ``method`` label rather than presented as a measurement.
"""

from __future__ import annotations

from wattfleet.core import catalog


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
