"""The ``inference`` collector: engine counters re-exported, and GPU energy split by phase.

Timeline of one sampler tick k (this collector is added after NVML, so the
GPUs were read moments before): :meth:`InferenceSensor.sample` kicks every
engine's scraper with tag k and waits a short, bounded time (``sync_wait``)
for them, so that in the common case (an engine answers in milliseconds) the
token counters published at tick k were read at the same instant as the GPU
energy of tick k. An engine slower than that is simply collected at a later
tick; sampling never waits on it longer. After all collectors ran, the
sampler's observer hook (:meth:`InferenceSensor.observe`) records tick k's
cumulative GPU energy. The energy between ticks p and k is then split by the
phase time between the scrapes tagged p and k: both sides of the division
cover the same interval. Phase energy is published one tick after the scrape
it uses; counters are cumulative, so nothing is lost.

Engine counters restart at 0 when an engine restarts; they are re-exported
through :class:`~wattfleet.exporter.counters.MonotonicCounter` so rate() and
increase() stay right. A restart is recognised by a changed
``process_start_time_seconds``, else (pages without it) by a drop in the
engine's step count (TGI forward passes, vLLM iterations), else by the counter
itself dropping; the first two also catch a counter that grew past its old
value between two scrapes. Two engines of one kind serving the same model on
one node are summed (their series would collide otherwise); KV-cache fill
takes the fuller one.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from wattfleet.core import catalog
from wattfleet.exporter.counters import MonotonicCounter
from wattfleet.exporter.inference.attribution import split_by_phase_time
from wattfleet.exporter.inference.config import EngineConfig
from wattfleet.exporter.inference.parsers import (
    BUSY,
    MARKED_ENERGY,
    PHASE_TIME_ENGINES,
    REQUEST_SECONDS,
    REQUESTS,
    TOKENS,
    CounterKey,
    EngineReading,
    ModelReading,
)
from wattfleet.exporter.inference.scraper import EngineScraper, ScrapeOutcome, fetch_metrics
from wattfleet.exporter.sensors.base import SensorResult

log = logging.getLogger(__name__)

EnergySource = Callable[[], dict[str, float]]
ENERGY_HISTORY = 256  # ticks of energy snapshots kept for scrapes still in flight


def merge_models(reading: EngineReading, model: str) -> EngineReading:
    """All of a reading under one model name (the config's ``model`` override)."""
    merged = ModelReading()
    for m in reading.models.values():
        for key, value in m.counters.items():
            merged.counters[key] = merged.counters.get(key, 0.0) + value
        for attr in ("running", "waiting"):
            if getattr(m, attr) is not None:
                setattr(merged, attr, (getattr(merged, attr) or 0.0) + getattr(m, attr))
        if m.kv_cache_ratio is not None:
            merged.kv_cache_ratio = max(merged.kv_cache_ratio or 0.0, m.kv_cache_ratio)
    return EngineReading({model: merged}, reading.start_time, reading.steps)


@dataclass
class EngineState:
    """What we keep about one configured engine between scrapes."""

    cfg: EngineConfig
    scraper: EngineScraper
    up: int = 0
    counters: dict[tuple[str, CounterKey], MonotonicCounter] = field(default_factory=dict)
    gauges: dict[str, ModelReading] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)
    start_time: float | None = None
    steps: float | None = None
    phase_joules: dict[tuple[str, str], float] = field(default_factory=dict)
    pending: list[tuple[int, dict[tuple[str, str], float]]] = field(default_factory=list)  # (tag, busy) to pair
    _last_tag: int | None = None
    _last_busy: dict[tuple[str, str], float] = field(default_factory=dict)


class InferenceSensor:
    """Collector named ``inference``; see the module docstring for the tick timeline."""

    name = "inference"

    def __init__(self, engines: list[EngineConfig], energy_source: EnergySource | None = None,
                 fetch: Callable[[str, float], str] = fetch_metrics, start: bool = True,
                 sync_wait: float = 0.05) -> None:
        self.energy_source = energy_source
        self.sync_wait = sync_wait
        self.engines = [EngineState(cfg, EngineScraper(cfg, fetch)) for cfg in engines]
        self._tag = 0
        self._energy: OrderedDict[int, tuple[float, dict[str, float]]] = OrderedDict()
        self._warned: set[str] = set()
        if start:
            for e in self.engines:
                e.scraper.start()

    # --- sampler hooks --------------------------------------------------------
    def sample(self, now: float) -> SensorResult:
        """Kick every engine, wait at most ``sync_wait`` for them, fold in what arrived, render."""
        result = SensorResult()
        self._tag += 1
        for e in self.engines:
            e.scraper.kick(self._tag)
        if self.sync_wait > 0:
            self.wait_for_scrapes(self.sync_wait)
        for e in self.engines:
            for outcome in e.scraper.drain():
                self._apply(e, outcome, now, result)
            self._attribute_pending(e, result)
        self._render(result)
        return result

    def observe(self, results: object, now: float) -> None:
        """Sampler observer: record this tick's cumulative GPU energy (NVML sampled it this tick)."""
        if self.energy_source is not None:
            self._energy[self._tag] = (now, dict(self.energy_source()))
            while len(self._energy) > ENERGY_HISTORY:
                self._energy.popitem(last=False)

    def wait_for_scrapes(self, timeout: float) -> bool:
        """Block until every engine answered (or failed) the last kick; for ``--once`` and tests."""
        deadline = time.monotonic() + timeout
        return all(e.scraper.wait(self._tag, max(0.0, deadline - time.monotonic())) for e in self.engines)

    def close(self) -> None:
        for e in self.engines:
            e.scraper.close()

    # --- folding scrapes into state -------------------------------------------
    def _apply(self, e: EngineState, outcome: ScrapeOutcome, now: float, result: SensorResult) -> None:
        if outcome.reading is None:
            e.up = 0
            e.gauges = {}
            result.errors.append(outcome.error or "scrape_error")
            return
        reading = merge_models(outcome.reading, e.cfg.model) if e.cfg.model else outcome.reading
        if reading.start_time is not None:
            restarted = e.start_time is not None and reading.start_time != e.start_time
        else:  # no start time on the page: the step count is the witness (a false alarm would double count)
            restarted = e.steps is not None and reading.steps is not None and reading.steps < e.steps
        if reading.start_time is not None:
            e.start_time = reading.start_time
        e.steps = reading.steps
        e.up = 1
        e.gauges = reading.models
        for model, m in reading.models.items():
            e.models.add(model)
            for key, raw in m.counters.items():
                counter = e.counters.get((model, key))
                if counter is None:
                    counter = e.counters[(model, key)] = MonotonicCounter()
                    if restarted:
                        counter.update(0, now)  # first seen after a restart: all of it is new
                    counter.update(raw, now)  # type: ignore[arg-type]
                elif restarted:
                    counter.restart(raw, now)
                else:
                    counter.update(raw, now)  # type: ignore[arg-type]
        if e.cfg.engine in PHASE_TIME_ENGINES and self.energy_source is not None:
            busy = {(model, key[1]): c.total for (model, key), c in e.counters.items() if key[0] == BUSY}
            e.pending.append((outcome.tag, busy))
            del e.pending[:-ENERGY_HISTORY]

    def _attribute_pending(self, e: EngineState, result: SensorResult) -> None:
        """Pair each scrape whose tick's energy is recorded with the previous one, oldest first."""
        while e.pending and e.pending[0][0] in self._energy:
            tag, busy = e.pending.pop(0)
            self._attribute(e, tag, busy, result)
        while e.pending and self._energy and e.pending[0][0] < next(iter(self._energy)):
            e.pending.pop(0)  # its energy snapshot aged out: nothing to pair it with

    def _attribute(self, e: EngineState, tag: int, busy_now: dict[tuple[str, str], float],
                   result: SensorResult) -> None:
        """Split the engine GPUs' energy since its last paired scrape by phase time."""
        if len(e.models) != 1:
            self._warn(f"multi:{e.cfg.url}", "%s reports several models; phase-time split needs one", e.cfg.url)
            return
        snap = self._energy[tag]
        last_tag, last_busy = e._last_tag, e._last_busy
        e._last_tag, e._last_busy = tag, busy_now
        if last_tag is None or last_tag not in self._energy:
            return  # first pairing: only a baseline
        (t0, energy0), (t1, energy1) = self._energy[last_tag], snap
        missing = [g for g in e.cfg.gpus if g not in energy1 or g not in energy0]
        if missing:
            self._warn(f"gpu:{e.cfg.url}", "GPUs %s of %s are not in NVML's list", missing, e.cfg.url)
            result.errors.append("gpu_not_found")
            return
        joules = sum(max(0.0, energy1[g] - energy0[g]) for g in e.cfg.gpus)
        (model,) = e.models
        busy = {phase: busy_now.get((model, phase), 0.0) - last_busy.get((model, phase), 0.0)
                for phase in catalog.PHASES}
        for phase, j in split_by_phase_time(joules, t1 - t0, busy).items():
            e.phase_joules[(model, phase)] = e.phase_joules.get((model, phase), 0.0) + j

    def _warn(self, key: str, msg: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg, *args)

    # --- rendering ------------------------------------------------------------
    def _render(self, result: SensorResult) -> None:
        counters: dict[tuple[str, str, CounterKey], float] = {}
        energy: dict[tuple[str, str, str, str], float] = {}
        gauges: dict[tuple[str, str], dict[str, float]] = {}
        gpus: set[tuple[str, str, str]] = set()
        for e in self.engines:
            engine = e.cfg.engine
            result.add(catalog.INFERENCE_ENGINE_UP.name, e.up, engine=engine, endpoint=e.cfg.endpoint)
            for (model, key), c in e.counters.items():
                if key[0] == MARKED_ENERGY:
                    k = (engine, model, key[1], catalog.PHASE_METHOD_MARKED)
                    energy[k] = energy.get(k, 0.0) + c.total
                else:
                    counters[(engine, model, key)] = counters.get((engine, model, key), 0.0) + c.total
            for (model, phase), j in e.phase_joules.items():
                k = (engine, model, phase, catalog.PHASE_METHOD_TIME)
                energy[k] = energy.get(k, 0.0) + j
            for model, m in e.gauges.items():
                g = gauges.setdefault((engine, model), {})
                for attr, combine in (("running", _add), ("waiting", _add), ("kv_cache_ratio", max)):
                    v = getattr(m, attr)
                    if v is not None:
                        g[attr] = combine(g[attr], v) if attr in g else v
            for model in e.models:
                gpus.update((engine, model, gpu) for gpu in e.cfg.gpus)
        metric_of = {TOKENS: catalog.INFERENCE_TOKENS, REQUESTS: catalog.INFERENCE_REQUESTS,
                     BUSY: catalog.INFERENCE_PHASE_BUSY, REQUEST_SECONDS: catalog.INFERENCE_REQUEST_PHASE_SECONDS}
        for (engine, model, (kind, phase)), total in sorted(counters.items()):
            labels = {"engine": engine, "model": model}
            if phase:
                labels["phase"] = phase
            result.add(metric_of[kind].name, total, **labels)
        for (engine, model, phase, method), j in sorted(energy.items()):
            result.add(catalog.INFERENCE_PHASE_ENERGY.name, j, engine=engine, model=model, phase=phase, method=method)
        gauge_metric = {"running": catalog.INFERENCE_RUNNING, "waiting": catalog.INFERENCE_WAITING,
                        "kv_cache_ratio": catalog.INFERENCE_KV_CACHE}
        for (engine, model), g in sorted(gauges.items()):
            for attr, v in g.items():
                result.add(gauge_metric[attr].name, v, engine=engine, model=model)
        for engine, model, gpu in sorted(gpus):
            result.add(catalog.INFERENCE_ENGINE_GPUS.name, 1, engine=engine, model=model, gpu=gpu)


def _add(a: float, b: float) -> float:
    return a + b
