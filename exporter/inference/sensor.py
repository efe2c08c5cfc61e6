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

Engine counters restart at 0 when an engine restarts; each re-exported
counter is an :class:`~wattfleet.exporter.inference.engine_counter.EngineCounter`,
which adds only plausible increases. A restart needs evidence: a later
``process_start_time_seconds`` (after the previous scrape: an older one is
another process behind the same URL), else (pages without it) the engine's step
count (TGI forward passes, vLLM iterations) falling to near zero, else the
counter itself falling to near zero; the first two also catch a counter that
grew past its old value between two scrapes. Any other decrease is a dip,
rejected. Every value an engine page gives is checked before it is summed
(:mod:`~wattfleet.exporter.inference.limits`): NaN, infinities, negatives,
values past exact float counting, increases faster than the engine's GPUs
allow, and ``marked`` phase energy above what its GPUs drew are rejected and
counted in ``wattfleet_inference_rejected_samples_total{engine, endpoint,
reason}`` (per engine and endpoint, which ``collector_errors_total`` cannot
say; and a rejected value is a fault of the engine's page, not a failed
sample, so the collector stays up). An endpoint answered by several engine
processes is refused (:mod:`~wattfleet.exporter.inference.replicas`), and
each engine tracks a bounded set of models
(:mod:`~wattfleet.exporter.inference.models`). Two engines of one kind
serving the same model on one node are summed (their series would collide
otherwise); KV-cache fill takes the fuller one.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from wattfleet.core import catalog
from wattfleet.exporter.inference.attribution import (
    cap_to_measured,
    marked_energy_cap,
    split_by_phase_time,
)
from wattfleet.exporter.inference.config import EngineConfig
from wattfleet.exporter.inference.engine_counter import COUNTER_DIP, NEAR_ZERO_FRACTION, EngineCounter
from wattfleet.exporter.inference.limits import EngineLimits
from wattfleet.exporter.inference.models import ModelTable
from wattfleet.exporter.inference.parsers import (
    BUSY,
    MARKED_ENERGY,
    PREFILL_SOURCES,
    PROMPT,
    REQUEST_SECONDS,
    REQUESTS,
    TOKENS,
    CounterKey,
    EngineReading,
    ModelReading,
)
from wattfleet.exporter.inference.replicas import ReplicaDetector
from wattfleet.exporter.inference.scraper import EngineScraper, ScrapeOutcome, fetch_metrics
from wattfleet.exporter.sensors.base import SensorResult

log = logging.getLogger(__name__)

EnergySource = Callable[[], dict[str, float]]
ENERGY_HISTORY = 256  # ticks of energy snapshots kept for scrapes still in flight

# Rejection reasons decided here (the counter's own are in engine_counter, the page's in parsers).
MODEL_LIMIT, MARKED_ABOVE_GPU_ENERGY, REPLICATED_ENDPOINT = (
    "model_limit", "marked_above_gpu_energy", "replicated_endpoint")


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
    return dataclasses.replace(reading, models={model: merged})


@dataclass
class MarkedInterval:
    """Marked joules one scrape added, waiting for the GPUs' energy of the tick that collected it."""

    tag: int
    joules: dict[tuple[str, str], float]
    elapsed_seconds: float


@dataclass
class EngineState:
    """What we keep about one configured engine between scrapes."""

    cfg: EngineConfig
    scraper: EngineScraper
    limits: EngineLimits
    models: ModelTable
    up: int = 0
    counters: dict[tuple[str, CounterKey], EngineCounter] = field(default_factory=dict)
    gauges: dict[str, ModelReading] = field(default_factory=dict)
    start_time: float | None = None
    steps: float | None = None
    last_tick_time: float | None = None  # tick time of the last applied scrape's tag: the interval's start
    last_scrape_wall: float | None = None  # Unix time the last good scrape began
    first_tick_time: float | None = None  # tick time of the first good scrape: busy time is bounded since then
    phase_joules: dict[tuple[str, str], float] = field(default_factory=dict)
    marked_joules: dict[tuple[str, str], float] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    replicas: ReplicaDetector = field(default_factory=ReplicaDetector)
    pending: list[tuple[int, dict[tuple[str, str], float]]] = field(default_factory=list)  # (tag, busy) to pair
    marked_pending: list[MarkedInterval] = field(default_factory=list)
    phase_time: bool = False  # the engine reported its own phase time: its energy is split by it
    lanes: int = 1            # parallel engine groups whose busy times add up (SGLang dp ranks)
    chunked_prefill: bool | None = None  # from the page once it shows, else the config's declaration
    _last_tag: int | None = None
    _last_busy: dict[tuple[str, str], float] = field(default_factory=dict)
    _marked_tag: int | None = None

    @classmethod
    def of(cls, cfg: EngineConfig, scraper: EngineScraper) -> EngineState:
        limits = cfg.limits
        return cls(cfg, scraper, limits, ModelTable(limits.max_models, limits.model_expiry_seconds),
                   chunked_prefill=cfg.chunked_prefill)

    def forget(self, models: list[str]) -> None:
        """Drop every series of ``models`` (expired): their memory is freed, their series end."""
        gone = set(models)
        self.counters = {k: c for k, c in self.counters.items() if k[0] not in gone}
        self.phase_joules = {k: j for k, j in self.phase_joules.items() if k[0] not in gone}
        self.marked_joules = {k: j for k, j in self.marked_joules.items() if k[0] not in gone}
        for model in gone:
            self.gauges.pop(model, None)


class InferenceSensor:
    """Collector named ``inference``; see the module docstring for the tick timeline."""

    name = "inference"

    def __init__(self, engines: list[EngineConfig], energy_source: EnergySource | None = None,
                 fetch: Callable[[str, float], str] = fetch_metrics, start: bool = True,
                 sync_wait: float = 0.05) -> None:
        self.energy_source = energy_source
        self.sync_wait = sync_wait
        self.engines = [EngineState.of(cfg, EngineScraper(cfg, fetch)) for cfg in engines]
        self._tag = 0
        self._energy: OrderedDict[int, tuple[float, dict[str, float]]] = OrderedDict()
        self._tick_times: OrderedDict[int, float] = OrderedDict()
        self._warned: set[str] = set()
        if start:
            for e in self.engines:
                e.scraper.start()

    # --- sampler hooks --------------------------------------------------------
    def sample(self, now: float) -> SensorResult:
        """Kick every engine, wait at most ``sync_wait`` for them, fold in what arrived, render."""
        result = SensorResult()
        self._tag += 1
        self._tick_times[self._tag] = now
        while len(self._tick_times) > ENERGY_HISTORY:
            self._tick_times.popitem(last=False)
        for e in self.engines:
            e.scraper.kick(self._tag)
        if self.sync_wait > 0:
            self.wait_for_scrapes(self.sync_wait)
        for e in self.engines:
            for outcome in e.scraper.drain():
                self._apply(e, outcome, now, result)
            self._attribute_pending(e, result)
            self._cap_marked_pending(e)
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
        previous_wall, e.last_scrape_wall = e.last_scrape_wall, outcome.wall_time
        if e.replicas.replicated or e.replicas.start_time_changed_to_an_older_process(
                outcome.reading.start_time, previous_wall):
            self._refuse(e, result)
            return
        reading = merge_models(outcome.reading, e.cfg.model) if e.cfg.model else outcome.reading
        for reason, n in reading.rejected.items():
            e.rejected[reason] += n
        # The interval this scrape covers is at most from the previous scrape's kick to now (it finished by now).
        elapsed = now - e.last_tick_time if e.last_tick_time is not None else 0.0
        e.last_tick_time = self._tick_times.get(outcome.tag, now)
        if e.first_tick_time is None:
            e.first_tick_time = e.last_tick_time
        lifetime = now - e.first_tick_time
        restarted, suspect = self._restart_evidence(e, reading)
        e.up = 1
        expired = e.models.expire(now)
        if expired:
            e.forget(expired)
        e.gauges = {}
        marked: dict[tuple[str, str], float] = {}
        for model, m in reading.models.items():
            if not e.models.admit(model, now):
                e.rejected[MODEL_LIMIT] += 1
                self._warn(f"models:{e.cfg.url}", "%s tracks at most %d models (max_models); model %r and any "
                           "further new ones are dropped and counted (reason model_limit)", e.cfg.url,
                           e.limits.max_models, model)
                continue
            e.gauges[model] = m
            for key, raw in m.counters.items():
                counter = e.counters.get((model, key))
                if counter is None:
                    counter = e.counters[(model, key)] = EngineCounter()
                bound = e.limits.max_increase(key[0], elapsed)
                if key[0] == BUSY:  # engine time: never more than the GPUs' time since first seen (one slack)
                    bound = min(bound, e.limits.max_increase(BUSY, lifetime) - counter.total)
                step = counter.update(raw, bound, restarted)
                if step.reason is not None:
                    e.rejected[step.reason] += 1
                    suspect = suspect or step.reason == COUNTER_DIP
                    self._warn(f"{step.reason}:{e.cfg.url}", "%s: %s %s of model %r rejected (%s); it is "
                               "counted in %s", e.cfg.url, key[0], key[1], model, step.reason,
                               catalog.INFERENCE_REJECTED.series)
                suspect = suspect or (step.restart and not restarted)
                if key[0] == MARKED_ENERGY and step.added > 0:
                    marked[(model, key[1])] = marked.get((model, key[1]), 0.0) + step.added
        if e.replicas.scrape(suspect):
            self._refuse(e, result)
        if self.energy_source is not None:
            e.marked_pending.append(MarkedInterval(self._tag, marked, elapsed))
            del e.marked_pending[:-ENERGY_HISTORY]
        elif marked:
            self._add_marked(e, marked, e.limits.max_increase(MARKED_ENERGY, elapsed))
        e.phase_time = e.phase_time or reading.phase_time
        e.lanes = max(1, reading.lanes)
        if reading.chunked_prefill:  # seen on the page: it holds, whatever the config declared
            if e.cfg.chunked_prefill is False:
                self._warn(f"chunked:{e.cfg.url}", "%s: the page shows prefill forwards that also decode (chunked "
                           "prefill) although the config declares chunked_prefill: false; the page is believed",
                           e.cfg.url)
            e.chunked_prefill = True
        elif reading.chunked_prefill is False and e.chunked_prefill is None:
            e.chunked_prefill = False
        if e.phase_time and self.energy_source is not None:
            busy = {(model, key[1]): c.total for (model, key), c in e.counters.items() if key[0] == BUSY}
            e.pending.append((outcome.tag, busy))
            del e.pending[:-ENERGY_HISTORY]

    @staticmethod
    def _restart_evidence(e: EngineState, reading: EngineReading) -> tuple[bool, bool]:
        """(restarted, suspect): whether the engine restarted since the last scrape, and whether the page
        behaved as only a replicated endpoint does (steps going down without falling to near zero, or a
        restart told by nothing but the step count)."""
        if reading.start_time is not None:
            restarted = e.start_time is not None and reading.start_time != e.start_time
            e.start_time = reading.start_time
            e.steps = reading.steps
            return restarted, False
        # No start time on the page: the step count is the witness (a false alarm would double count).
        if e.steps is None or reading.steps is None or reading.steps >= e.steps:
            e.steps = reading.steps if reading.steps is not None else e.steps
            return False, False
        if reading.steps <= NEAR_ZERO_FRACTION * e.steps:
            e.steps = reading.steps
            return True, True
        return False, True  # the high-water mark stays: only a later climb past it is progress

    def _refuse(self, e: EngineState, result: SensorResult) -> None:
        """The endpoint is several engine processes: down, its counters held, never counted again."""
        e.up = 0
        e.gauges = {}
        e.rejected[REPLICATED_ENDPOINT] += 1
        result.errors.append(REPLICATED_ENDPOINT)
        self._warn(f"replicated:{e.cfg.url}", "%s engine at %s looks like a load-balanced Service over several "
                   "engine processes (%s); refused (engine_up 0, reason replicated_endpoint): configure one entry "
                   "per engine process (its pod IP or per-replica URL), then restart the exporter",
                   e.cfg.engine, e.cfg.url, e.replicas.evidence)

    def _cap_marked_pending(self, e: EngineState) -> None:
        """Cap each scrape's marked joules by what the engine's GPUs drew since the previous scrape."""
        while e.marked_pending and (e.marked_pending[0].tag in self._energy
                                    or (self._energy and e.marked_pending[0].tag < next(iter(self._energy)))):
            interval = e.marked_pending.pop(0)
            start, e._marked_tag = e._marked_tag, interval.tag
            if not interval.joules:
                continue
            cap = e.limits.max_increase(MARKED_ENERGY, interval.elapsed_seconds)  # no GPU reading to compare
            if start is not None and start in self._energy and interval.tag in self._energy:
                energy0, energy1 = self._energy[start][1], self._energy[interval.tag][1]
                if all(g in energy0 and g in energy1 for g in e.cfg.gpus):
                    measured = sum(max(0.0, energy1[g] - energy0[g]) for g in e.cfg.gpus)
                    cap = marked_energy_cap(measured, len(e.cfg.gpus))
            self._add_marked(e, interval.joules, cap)

    def _add_marked(self, e: EngineState, joules: dict[tuple[str, str], float], cap: float) -> None:
        capped, excess = cap_to_measured(joules, cap)
        if excess > 0:
            e.rejected[MARKED_ABOVE_GPU_ENERGY] += 1
            self._warn(f"marked:{e.cfg.url}", "%s reports %.1f J of marked phase energy more than its GPUs %s "
                       "drew; the excess is rejected (reason %s)", e.cfg.url, excess, ",".join(e.cfg.gpus),
                       MARKED_ABOVE_GPU_ENERGY)
        for key, j in capped.items():
            if key[0] in e.models:  # a model expired meanwhile has no series left to add to
                e.marked_joules[key] = e.marked_joules.get(key, 0.0) + j

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
        (model,) = e.models.names()
        busy = {phase: busy_now.get((model, phase), 0.0) - last_busy.get((model, phase), 0.0)
                for phase in catalog.PHASES}
        # Each parallel group (SGLang dp rank) is busy at most the whole interval: their times add up to lanes x it.
        for phase, j in split_by_phase_time(joules, (t1 - t0) * e.lanes, busy).items():
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
        attribution: dict[tuple[str, str], dict[str, str]] = {}
        for e in self.engines:
            engine = e.cfg.engine
            result.add(catalog.INFERENCE_ENGINE_UP.name, e.up, engine=engine, endpoint=e.cfg.endpoint)
            for reason, n in sorted(e.rejected.items()):
                result.add(catalog.INFERENCE_REJECTED.name, n, engine=engine, endpoint=e.cfg.endpoint, reason=reason)
            for (model, key), c in e.counters.items():
                if key[0] == MARKED_ENERGY:
                    continue
                keys = [key, (TOKENS, "prefill")] if key[0] == PROMPT and key[1] in PREFILL_SOURCES else [key]
                for ck in keys:  # prefill tokens are the prompt tokens this engine computed: one counter, two series
                    counters[(engine, model, ck)] = counters.get((engine, model, ck), 0.0) + c.total
            for (model, phase), j in e.marked_joules.items():
                k = (engine, model, phase, catalog.PHASE_METHOD_MARKED)
                energy[k] = energy.get(k, 0.0) + j
            for (model, phase), j in e.phase_joules.items():
                k = (engine, model, phase, catalog.PHASE_METHOD_TIME)
                energy[k] = energy.get(k, 0.0) + j
            for model, m in e.gauges.items():
                g = gauges.setdefault((engine, model), {})
                for attr, combine in (("running", _add), ("waiting", _add), ("kv_cache_ratio", max)):
                    v = getattr(m, attr)
                    if v is not None:
                        g[attr] = combine(g[attr], v) if attr in g else v
            for model in e.models.names():
                gpus.update((engine, model, gpu) for gpu in e.cfg.gpus)
                marked = any(m == model for m, _ in e.marked_joules)
                attribution[(engine, model)] = attribution_labels(e.phase_time, e.chunked_prefill, marked)
        metric_of = {TOKENS: catalog.INFERENCE_TOKENS, PROMPT: catalog.INFERENCE_PROMPT_TOKENS,
                     REQUESTS: catalog.INFERENCE_REQUESTS,
                     BUSY: catalog.INFERENCE_PHASE_BUSY, REQUEST_SECONDS: catalog.INFERENCE_REQUEST_PHASE_SECONDS}
        for (engine, model, (kind, phase)), total in sorted(counters.items()):
            labels = {"engine": engine, "model": model}
            if phase:
                labels["source" if kind == PROMPT else "phase"] = phase
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
        for (engine, model), labels in sorted(attribution.items()):
            result.add(catalog.INFERENCE_ATTRIBUTION.name, 1, engine=engine, model=model, **labels)


def attribution_labels(phase_time: bool, chunked_prefill: bool | None, marked: bool = False) -> dict[str, str]:
    """The labels of ``wattfleet_inference_phase_attribution_info`` for one engine.

    With phase time (or phases marked by the serving code, which marks a mixed
    step as one phase), a forward that prefills while decoding the running batch
    (TGI chunked prefill, SGLang mixed chunks) counts as prefill: its decode work
    is counted as prefill. Where that may happen (on, or not known to be off),
    the assumption says so; without either, the aggregator's token fit
    attributes the energy. Marked energy is what the engine page claims first.
    """
    chunked = {True: "true", False: "false", None: "unknown"}[chunked_prefill]
    if not phase_time and not marked:
        return {"method": catalog.PHASE_METHOD_TOKEN_FIT, "chunked_prefill": chunked,
                "assumption": catalog.ASSUME_TOKEN_FIT}
    method = catalog.PHASE_METHOD_MARKED if marked else catalog.PHASE_METHOD_TIME
    assumption = catalog.ASSUME_SEPARATE_PHASES if chunked_prefill is False else catalog.ASSUME_MIXED_AS_PREFILL
    return {"method": method, "chunked_prefill": chunked, "assumption": assumption}


def _add(a: float, b: float) -> float:
    return a + b
