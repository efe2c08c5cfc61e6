"""Phase marking for serving code: exact per-phase GPU energy from counter deltas at phase boundaries.

Serving code that knows when it runs prefill and when it runs decode marks it::

    from wattfleet.exporter.inference.phase import phase

    with phase("prefill"):
        logits = model.forward(prompt_batch)

or with ``begin("decode")`` / ``end("decode")`` where a context manager does
not fit the scheduler loop. At every boundary the tracker reads the GPUs'
NVML energy counters (millijoules since driver load) and gives the energy
since the previous boundary to the phase that was active, or to ``idle``.
No model and no sampling interval is involved: the split is as exact as the
hardware counter. Phases do not nest or overlap (one GPU set, one phase at a
time); a step that mixes both (chunked prefill) must be marked as one of them.

The per-phase joules are available as :meth:`PhaseTracker.joules`, and
:meth:`PhaseTracker.collect` makes the tracker a prometheus_client collector:
registered in the serving process's registry, its series appear on the
engine's own /metrics page with ``method="marked"``, and the wattfleet
exporter scraping that page re-exports them with the engine's labels.

The NVML module is injected (the real ``pynvml`` or
:class:`~wattfleet.sim.fake_nvml.FakeNvml`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from prometheus_client.core import CounterMetricFamily

from wattfleet.core import catalog
from wattfleet.exporter.counters import EnergyCounter
from wattfleet.exporter.sensors.nvml import Nvml, load_nvml

MARKABLE = catalog.PHASES
ALL_PHASES = catalog.PHASES + (catalog.PHASE_IDLE,)


class PhaseError(RuntimeError):
    """Phases were marked out of order (begin while another phase runs, end of a phase not running)."""


class PhaseTracker:
    """Attributes the energy of ``gpus`` (NVML indices; all by default) to marked phases."""

    def __init__(self, nvml: Nvml | None = None, gpus: Sequence[int] | None = None,
                 model: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if nvml is None:
            nvml = load_nvml()
        self.nvml = nvml
        self.nvml.nvmlInit()
        indices = list(gpus) if gpus is not None else list(range(self.nvml.nvmlDeviceGetCount()))
        if not indices:
            raise ValueError("no GPU to track")
        self.gpus = indices
        self.model = model
        self.clock = clock
        self._handles = [self.nvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
        self._counters = [EnergyCounter(scale=1e-3) for _ in indices]
        self._joules = {p: 0.0 for p in ALL_PHASES}
        self._seconds = {p: 0.0 for p in ALL_PHASES}
        self._active: str | None = None
        self._since = clock()
        self.read_errors = 0
        self._lock = threading.Lock()
        self._advance()  # baseline readings

    # --- marking ------------------------------------------------------------
    def begin(self, name: str) -> None:
        """``name`` starts now; what the GPUs drew since the last boundary goes to the previous state."""
        if name not in MARKABLE:
            raise ValueError(f"unknown phase {name!r}: one of {', '.join(MARKABLE)}")
        with self._lock:
            if self._active is not None:
                raise PhaseError(f"begin({name!r}) while {self._active!r} is running; end it first")
            self._advance()
            self._active = name

    def end(self, name: str | None = None) -> None:
        """The running phase (``name`` if given, checked) ends now."""
        with self._lock:
            if self._active is None or (name is not None and name != self._active):
                raise PhaseError(f"end({name!r}) but the running phase is {self._active!r}")
            self._advance()
            self._active = None

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.begin(name)
        try:
            yield
        finally:
            self.end(name)

    @property
    def active(self) -> str | None:
        return self._active

    # --- reading --------------------------------------------------------------
    def joules(self) -> dict[str, float]:
        """Energy per phase (prefill, decode, idle) since the tracker started, up to now."""
        with self._lock:
            self._advance()
            return dict(self._joules)

    def seconds(self) -> dict[str, float]:
        """Time per phase since the tracker started, up to now."""
        with self._lock:
            self._advance()
            return dict(self._seconds)

    def collect(self) -> Iterator[CounterMetricFamily]:
        """prometheus_client collector protocol: per-phase joules and seconds, ``method="marked"``."""
        joules, seconds = self.joules(), self.seconds()
        extra = {"model": self.model} if self.model else {}
        labels = ["phase", "method"] + list(extra)
        energy = CounterMetricFamily(catalog.INFERENCE_PHASE_ENERGY.name, catalog.INFERENCE_PHASE_ENERGY.help,
                                     labels=labels, unit="")
        busy = CounterMetricFamily(catalog.INFERENCE_PHASE_BUSY.name, catalog.INFERENCE_PHASE_BUSY.help,
                                   labels=labels, unit="")
        for p in ALL_PHASES:
            energy.add_metric([p, catalog.PHASE_METHOD_MARKED, *extra.values()], joules[p])
            if p in MARKABLE:
                busy.add_metric([p, catalog.PHASE_METHOD_MARKED, *extra.values()], seconds[p])
        yield energy
        yield busy

    def _advance(self) -> None:
        """Read every counter once; the energy and time since the last read go to the current state."""
        now = self.clock()
        state = self._active or catalog.PHASE_IDLE
        added = 0.0
        for handle, counter in zip(self._handles, self._counters, strict=True):
            try:
                raw = int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
            except self.nvml.NVMLError:
                self.read_errors += 1
                counter.rebaseline()  # what flowed while unreadable is unknown; do not guess
                continue
            added += counter.update(raw, now)
        self._joules[state] += added
        self._seconds[state] += now - self._since
        self._since = now


_default: PhaseTracker | None = None
_default_lock = threading.Lock()


def configure(nvml: Nvml | None = None, gpus: Sequence[int] | None = None,
              model: str | None = None, clock: Callable[[], float] = time.monotonic) -> PhaseTracker:
    """Create the process-wide tracker that :func:`phase`, :func:`begin` and :func:`end` use."""
    global _default
    with _default_lock:
        _default = PhaseTracker(nvml, gpus, model, clock)
        return _default


def tracker() -> PhaseTracker:
    """The process-wide tracker, created on first use with the real NVML and all GPUs."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PhaseTracker()
        return _default


def phase(name: str) -> Any:
    """``with phase("prefill"): ...`` on the process-wide tracker."""
    return tracker().phase(name)


def begin(name: str) -> None:
    tracker().begin(name)


def end(name: str | None = None) -> None:
    tracker().end(name)
