"""One re-exported engine counter that grows only by plausible increases.

:class:`~wattfleet.exporter.counters.MonotonicCounter` reads every decrease as
a restart and adds the whole new value: right for a hardware counter, wrong
for an engine page, where a counter that dips (a load balancer alternating
between replicas, a rank missing from one scrape) would be added again each
time. Here a restart needs evidence: the engine's start time changed (the
caller says so), or the counter fell to near zero. Any other decrease is a
dip: rejected, and the high-water mark stays the baseline, so the counter
resumes counting only once the engine is past it again. Every increase is
checked against a bound (see :mod:`wattfleet.exporter.inference.limits`);
what fails a check is not added and its reason is returned for counting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wattfleet.exporter.inference.limits import MAX_EXACT_COUNT

# A decrease to at most this fraction of the last value is a restart without other evidence.
NEAR_ZERO_FRACTION = 0.1

# Reasons a value is rejected (the ``reason`` label of the rejected-samples counter).
NOT_FINITE, NEGATIVE, TOO_LARGE, IMPLAUSIBLE_RATE, COUNTER_DIP = (
    "not_finite", "negative", "too_large", "implausible_rate", "counter_dip")


@dataclass
class Step:
    """What one reading did: ``added`` to the total, a rejection ``reason``, and whether it looked like a restart."""

    added: float = 0.0
    reason: str | None = None
    restart: bool = False


class EngineCounter:
    """Cumulative total of one engine counter; :meth:`update` returns what a reading did."""

    def __init__(self) -> None:
        self.total = 0.0
        self._last: float | None = None

    @property
    def last(self) -> float | None:
        return self._last

    def update(self, raw: float, max_increase: float, restarted: bool = False) -> Step:
        """Feed one reading; ``max_increase`` bounds what it may add, ``restarted`` says the engine restarted.

        A counter first seen after a restart counts from zero (all of it is new).
        """
        if not math.isfinite(raw):
            return Step(reason=NOT_FINITE)
        if raw < 0:
            return Step(reason=NEGATIVE)
        if raw > MAX_EXACT_COUNT:
            return Step(reason=TOO_LARGE)
        last = self._last
        if last is None and not restarted:
            self._last = raw  # the first reading only sets the baseline
            return Step()
        if last is None or restarted:
            delta, restart = raw, True
        elif raw >= last:
            delta, restart = raw - last, False
        elif raw <= NEAR_ZERO_FRACTION * last:
            delta, restart = raw, True
        else:
            return Step(reason=COUNTER_DIP)  # high-water mark kept: only growth past it counts
        if delta > max_increase:
            self._last = raw  # counting goes on from here; the implausible step itself is never summed
            return Step(reason=IMPLAUSIBLE_RATE, restart=restart)
        self._last = raw
        self.total += delta
        return Step(delta, None, restart)
