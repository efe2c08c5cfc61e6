"""Monotonic energy counters built from raw hardware counters.

Hardware energy counters misbehave in two ways that break Prometheus'
``increase()``: RAPL's ``energy_uj`` wraps at ``max_energy_range_uj`` (every
few minutes on a busy socket), and NVML's total-energy counter restarts at 0
when the driver reloads. We keep our own counter per device and domain that
only ever adds the energy that really flowed, and count each correction.

A decrease of the raw value is either a wrap or a reset. With a known wrap
range, it is a wrap when the energy the wrap implies is plausible for the
elapsed time (below ``max_watts`` x seconds); otherwise it is a reset and the
new raw value is the energy since the reset. Without a wrap range (NVML's
64-bit counter never wraps in practice) every decrease is a reset.

Whatever the path (increase, wrap or reset), an interval may add at most
``max_watts`` x seconds: a reading that would add more cannot be physical (a
firmware glitch, a corrupted file, a hostile sysfs) and is rejected and
counted in :attr:`EnergyCounter.rejected`, never summed; the counter then
continues from that reading. A negative raw value is rejected outright.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EnergyCounter:
    """Accumulates joules from successive raw readings of one hardware counter.

    ``wrap_range`` is the counter's modulus in raw units (``max_energy_range_uj
    + 1`` for RAPL); ``scale`` converts raw units to joules (1e-6 for uJ, 1e-3
    for mJ); ``max_watts`` bounds what a single interval may plausibly add
    (None: no bound, for counters that are not energy).
    """

    scale: float
    wrap_range: int | None = None
    max_watts: float | None = 5000.0
    joules: float = 0.0
    wraps: int = 0
    resets: int = 0
    rejected: int = 0
    _last_raw: int | None = field(default=None, repr=False)
    _last_time: float | None = field(default=None, repr=False)
    _reset_bound_watts: float | None = field(default=None, repr=False)
    _suspect: tuple[int, float] | None = field(default=None, repr=False)  # last rejected (raw, time)

    def update(self, raw: int, now: float) -> float:
        """Feed one raw reading taken at monotonic time ``now``; return joules added."""
        if raw < 0:
            self.rejected += 1  # no counter counts below zero: keep the last good baseline
            return 0.0
        last, last_time = self._last_raw, self._last_time
        if last is None or last_time is None:
            self._last_raw, self._last_time = raw, now
            return 0.0  # the first reading only sets the baseline
        bound, self._reset_bound_watts = self._reset_bound_watts, None
        delta, kind = self._delta(raw, last, now - last_time, bound)
        if self._plausible(delta * self.scale, now - last_time):
            self._suspect = None
            return self._accept(raw, now, delta, kind)
        suspect = self._suspect
        if suspect is not None:
            # Two readings in a row agree with each other: the counter really moved (a firmware
            # reset to an odd value, a swapped device). Continue from there; what it counted
            # between the last good reading and the move is unknown, so nothing is added for it.
            s_delta, s_kind = self._delta(raw, suspect[0], now - suspect[1], None)
            if self._plausible(s_delta * self.scale, now - suspect[1]):
                self._suspect = None
                return self._accept(raw, now, s_delta, s_kind)
        # Not physical: rejected and counted. The baseline stays at the last good reading, so a
        # glitch that comes back is measured against it (never read as a wrap or a reset), and
        # this reading is kept in case the next one confirms it.
        self.rejected += 1
        self._suspect = (raw, now)
        return 0.0

    def _delta(self, raw: int, last: int, elapsed: float, reset_bound: float | None) -> tuple[int, str]:
        """Raw units counted since ``last`` and how (``""``, ``"wrap"``, ``"reset"``); no side effects."""
        delta = raw - last
        if reset_bound is not None and 0 <= delta and raw * self.scale <= reset_bound * max(elapsed, 1e-3):
            # The device was reset while away and its counter has already
            # climbed past the old raw value: everything it holds is new.
            return raw, "reset"
        if delta >= 0:
            return delta, ""
        if self.wrap_range is not None and raw < self.wrap_range:
            wrapped = raw + self.wrap_range - last
            if wrapped >= 0 and self._plausible(wrapped * self.scale, elapsed):
                return wrapped, "wrap"
        return raw, "reset"

    def _accept(self, raw: int, now: float, delta: int, kind: str) -> float:
        if kind == "wrap":
            self.wraps += 1
        elif kind == "reset":
            self.resets += 1
        self._last_raw, self._last_time = raw, now
        added = delta * self.scale
        self.joules += added
        return added

    def _plausible(self, joules: float, elapsed: float) -> bool:
        return self.max_watts is None or joules <= self.max_watts * max(elapsed, 1e-3)

    @property
    def has_baseline(self) -> bool:
        return self._last_raw is not None

    def suspect_reset(self, max_watts: float | None = None) -> None:
        """The device came back from an outage that usually resets it (a GPU off the bus).

        The next reading is taken as counted from zero when that is plausible:
        the whole raw value fits in ``max_watts`` (the board's power limit when
        known) over the outage. A counter that kept running since the driver
        loaded holds far more than that and still adds only ``raw - last``.
        """
        self._reset_bound_watts = max_watts if max_watts is not None else self.max_watts

    def rebaseline(self) -> None:
        """Forget the last raw value (device re-appeared): the next reading starts fresh."""
        self._last_raw = None
        self._last_time = None
        self._suspect = None

    @property
    def last_raw(self) -> int | None:
        return self._last_raw

    @property
    def last_time(self) -> float | None:
        return self._last_time

    def resume(self, joules: float, wraps: int, resets: int, last_raw: int | None, last_time: float) -> None:
        """Continue a counter an earlier exporter process saved (``--state-file``).

        The saved raw value becomes the baseline as of ``last_time`` (when it
        was read, on this process's clock), so the first reading adds what the
        hardware counted while the exporter was down through the same
        wrap/reset logic as any other interval. ``last_raw=None``: no baseline,
        the first reading only sets one.
        """
        self.joules, self.wraps, self.resets = joules, wraps, resets
        self._last_raw, self._last_time = last_raw, (last_time if last_raw is not None else None)
        self._reset_bound_watts = None
        self._suspect = None


@dataclass
class PowerIntegrator:
    """Energy from sampled power by the trapezoidal rule.

    Used where no energy counter exists (pre-Volta GPUs, the estimated CPU
    model). It misses bursts shorter than the sampling interval, which is why
    the counter is preferred whenever the hardware has one.
    """

    joules: float = 0.0
    max_watts: float | None = 5000.0
    rejected: int = 0
    _last_watts: float | None = field(default=None, repr=False)
    _last_time: float | None = field(default=None, repr=False)

    def update(self, watts: float, now: float) -> float:
        if not 0.0 <= watts <= (self.max_watts if self.max_watts is not None else float("inf")):
            self.rejected += 1  # not physical (NaN included): the interval is bridged by the next good reading
            return 0.0
        added = 0.0
        if self._last_watts is not None and self._last_time is not None and now > self._last_time:
            added = 0.5 * (watts + self._last_watts) * (now - self._last_time)
            self.joules += added
        self._last_watts, self._last_time = watts, now
        return added

    def rebaseline(self) -> None:
        self._last_watts = None
        self._last_time = None

    def resume(self, joules: float) -> None:
        """Continue a saved total; the power while the exporter was down is unknown, so nothing is added for it."""
        self.joules = joules
        self.rebaseline()


class MonotonicCounter(EnergyCounter):
    """EnergyCounter's reset handling for any re-exported counter (tokens, seconds).

    Counters scraped from another process (an inference engine) restart at 0
    when that process restarts; a decrease is always a reset (no wrap range,
    unit scale), so :attr:`total` only grows by what really happened.
    """

    def __init__(self) -> None:
        super().__init__(scale=1.0, max_watts=None)

    @property
    def total(self) -> float:
        return self.joules

    def restart(self, raw: float, now: float) -> float:
        """The source restarted (its start time changed): all of ``raw`` is new, even when it did not drop."""
        if self._last_raw is None or raw < self._last_raw:
            return self.update(raw, now)  # type: ignore[arg-type]  # a drop is a reset already
        self.resets += 1
        self.rebaseline()
        self.update(0, now)
        return self.update(raw, now)  # type: ignore[arg-type]
