"""Engine /metrics text -> one normalized reading per model.

Each engine names the same facts differently; we only need a handful of them
(tokens by phase, finished requests, phase time, queue depth, KV-cache fill).
Names as exposed by the engines (from their docs and source):

* vLLM (Python prometheus_client, label ``model_name``, v1 adds ``engine`` for
  data-parallel ranks): ``vllm:prompt_tokens_total``,
  ``vllm:generation_tokens_total``, ``vllm:request_success_total{finished_reason}``,
  ``vllm:request_prefill_time_seconds`` and ``vllm:request_decode_time_seconds``
  histograms (per-request times: request-seconds, not engine time),
  ``vllm:num_requests_running``, ``vllm:num_requests_waiting``,
  ``vllm:kv_cache_usage_perc`` (v1) or ``vllm:gpu_cache_usage_perc`` (v0), both
  a 0..1 fraction despite the name. ``vllm:iteration_tokens_total`` (tokens
  per engine step, both phases mixed) gives the engine's step count
  (``_count``), used to notice a restart where ``process_start_time_seconds``
  is missing (multi-process API servers do not export it).
* SGLang (label ``model_name``, ``name`` in old releases): ``sglang:prompt_tokens_total``,
  ``sglang:generation_tokens_total``, ``sglang:num_requests_total``,
  ``sglang:num_running_reqs``, ``sglang:num_queue_reqs``, ``sglang:token_usage``.
* TGI (Rust metrics-exporter-prometheus, no model label, counters without
  ``_total``): ``tgi_batch_forward_duration{method="prefill"|"decode"}``
  histogram (engine time per phase), ``tgi_batch_inference_count{method}``
  (forward passes: the step count that tells a restart, since TGI exports no
  process start time), ``tgi_request_input_length`` and
  ``tgi_request_generated_tokens`` histograms (their ``_sum`` counts tokens:
  input length is recorded when a request is admitted, generated tokens when
  it succeeds), ``tgi_request_success`` / ``tgi_request_count``,
  ``tgi_queue_size``, ``tgi_batch_current_size``.

Any engine's page may also carry ``wattfleet_inference_phase_energy_joules``
with ``method="marked"``, published by serving code that uses
:mod:`wattfleet.exporter.inference.phase`; it is passed through.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from wattfleet.core import catalog

UNKNOWN_MODEL = "unknown"

# Counter keys of a reading: (kind, phase); phase is "" where none applies.
TOKENS, REQUESTS, BUSY, REQUEST_SECONDS, MARKED_ENERGY = (
    "tokens", "requests", "busy_seconds", "request_phase_seconds", "marked_energy_joules")
CounterKey = tuple[str, str]


class ParseError(ValueError):
    """The page is not usable; ``reason`` is the short label for the error counter."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


@dataclass
class ModelReading:
    """Cumulative counters and current gauges of one model served by one engine."""

    counters: dict[CounterKey, float] = field(default_factory=dict)
    running: float | None = None
    waiting: float | None = None
    kv_cache_ratio: float | None = None


@dataclass
class EngineReading:
    models: dict[str, ModelReading]
    start_time: float | None = None  # process_start_time_seconds: a change means the engine restarted
    steps: float | None = None       # cumulative engine steps / forward passes: a drop means a restart
    rejected: dict[str, int] = field(default_factory=dict)  # samples left out of the reading, by reason


@dataclass(frozen=True)
class _Sample:
    key: str          # sample name without a trailing _total
    labels: dict[str, str]
    value: float


def _samples(text: str) -> list[_Sample]:
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as exc:  # the parser raises ValueError, IndexError... on garbage
        raise ParseError("parse_error", f"not Prometheus text format: {exc}") from None
    out = []
    for family in families:
        for s in family.samples:
            # NaN and +-Inf stay in: the collector rejects and counts them (_Collect), never sums them.
            if s.name.endswith("_created") or not isinstance(s.value, (int, float)):
                continue
            # prometheus_client appends _total to counters typed without it (TGI): match both.
            key = s.name[:-6] if s.name.endswith("_total") else s.name
            out.append(_Sample(key, dict(s.labels), float(s.value)))
    return out


def _invalid(value: float) -> str | None:
    """Why ``value`` cannot be a count or a gauge (NaN or +-Inf would poison a re-exported counter for good)."""
    if not math.isfinite(value):
        return "not_finite"
    if value < 0:
        return "negative"
    return None


class _Collect:
    """Sums samples into per-model readings; a counter with one invalid sample is left out whole and counted."""

    def __init__(self, samples: list[_Sample], model_of: Callable[[dict[str, str]], str]) -> None:
        self.by_key: dict[str, list[_Sample]] = defaultdict(list)
        for s in samples:
            self.by_key[s.key].append(s)
        self.model_of = model_of
        self.models: dict[str, ModelReading] = {}
        self.rejected: dict[str, int] = defaultdict(int)
        self._poisoned: set[tuple[str, CounterKey]] = set()

    def _add(self, model: str, ckey: CounterKey, value: float) -> None:
        reason = _invalid(value)
        if reason is not None:
            self.rejected[reason] += 1
            self._poisoned.add((model, ckey))  # a sum missing one rank's value would read as a dip
            return
        m = self.model(model).counters
        m[ckey] = m.get(ckey, 0.0) + value

    def model(self, name: str) -> ModelReading:
        return self.models.setdefault(name, ModelReading())

    def has(self, key: str) -> bool:
        return key in self.by_key

    def counter(self, key: str, ckey: CounterKey, where: Callable[[dict[str, str]], bool] = lambda _: True) -> None:
        for s in self.by_key.get(key, ()):
            if where(s.labels):
                self._add(self.model_of(s.labels), ckey, s.value)

    def gauge(self, keys: Iterable[str], attr: str, combine: Callable[[float, float], float]) -> None:
        for key in keys:
            found = False
            for s in self.by_key.get(key, ()):
                found = True
                reason = _invalid(s.value)
                if reason is not None:
                    self.rejected[reason] += 1
                    continue
                m = self.model(self.model_of(s.labels))
                old = getattr(m, attr)
                setattr(m, attr, s.value if old is None else combine(old, s.value))
            if found:
                return  # first name present wins (kv_cache_usage_perc over gpu_cache_usage_perc)

    def total(self, key: str) -> float | None:
        """Sum of every sample named ``key`` over all labels, None when the page has none."""
        found = self.by_key.get(key)
        if not found or any(_invalid(s.value) for s in found):
            return None
        total = sum(s.value for s in found)
        return total if math.isfinite(total) else None  # finite values can still add up past the float range

    def finish(self, samples: list[_Sample], steps_key: str | None = None) -> EngineReading:
        self._marked()
        for model, ckey in self._poisoned:
            if model in self.models:
                self.models[model].counters.pop(ckey, None)
        start = next((s.value for s in samples if s.key == "process_start_time_seconds"), None)
        start_invalid = _invalid(start) if start is not None else None
        if start_invalid is not None:
            self.rejected[start_invalid] += 1
            start = None
        return EngineReading(self.models, start, self.total(steps_key) if steps_key else None, dict(self.rejected))

    def _marked(self) -> None:
        default = next(iter(self.models)) if len(self.models) == 1 else UNKNOWN_MODEL
        for metric, kind in ((catalog.INFERENCE_PHASE_ENERGY, MARKED_ENERGY), (catalog.INFERENCE_PHASE_BUSY, BUSY)):
            for s in self.by_key.get(metric.name, ()):
                if s.labels.get("method") != catalog.PHASE_METHOD_MARKED or not s.labels.get("phase"):
                    continue
                self._add(s.labels.get("model") or default, (kind, s.labels["phase"]), s.value)


def _sum(a: float, b: float) -> float:
    return a + b


def parse_vllm(text: str) -> EngineReading:
    samples = _samples(text)
    c = _Collect(samples, lambda labels: labels.get("model_name") or UNKNOWN_MODEL)
    if not any(k.startswith("vllm:") for k in c.by_key):
        raise ParseError("no_engine_metrics", "no vllm: metrics on the page")
    c.counter("vllm:prompt_tokens", (TOKENS, "prefill"))
    c.counter("vllm:generation_tokens", (TOKENS, "decode"))
    c.counter("vllm:request_success", (REQUESTS, ""))
    c.counter("vllm:request_prefill_time_seconds_sum", (REQUEST_SECONDS, "prefill"))
    c.counter("vllm:request_decode_time_seconds_sum", (REQUEST_SECONDS, "decode"))
    c.gauge(["vllm:num_requests_running"], "running", _sum)
    c.gauge(["vllm:num_requests_waiting"], "waiting", _sum)
    c.gauge(["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"], "kv_cache_ratio", max)
    return c.finish(samples, "vllm:iteration_tokens_total_count")


def parse_sglang(text: str) -> EngineReading:
    samples = _samples(text)
    c = _Collect(samples, lambda labels: labels.get("model_name") or labels.get("name") or UNKNOWN_MODEL)
    if not any(k.startswith("sglang:") for k in c.by_key):
        raise ParseError("no_engine_metrics", "no sglang: metrics on the page")
    c.counter("sglang:prompt_tokens", (TOKENS, "prefill"))
    c.counter("sglang:generation_tokens", (TOKENS, "decode"))
    c.counter("sglang:num_requests", (REQUESTS, ""))
    c.gauge(["sglang:num_running_reqs"], "running", _sum)
    c.gauge(["sglang:num_queue_reqs"], "waiting", _sum)
    c.gauge(["sglang:token_usage"], "kv_cache_ratio", max)
    return c.finish(samples)


def _method_is(phase: str) -> Callable[[dict[str, str]], bool]:
    """Selects the series whose ``method`` label is ``phase``."""
    return lambda labels: labels.get("method") == phase


def parse_tgi(text: str) -> EngineReading:
    samples = _samples(text)
    c = _Collect(samples, lambda labels: UNKNOWN_MODEL)  # TGI pages carry no model label
    if not any(k.startswith("tgi_") for k in c.by_key):
        raise ParseError("no_engine_metrics", "no tgi_ metrics on the page")
    c.counter("tgi_request_input_length_sum", (TOKENS, "prefill"))
    c.counter("tgi_request_generated_tokens_sum", (TOKENS, "decode"))
    c.counter("tgi_request_success" if c.has("tgi_request_success") else "tgi_request_count", (REQUESTS, ""))
    for phase in catalog.PHASES:
        c.counter("tgi_batch_forward_duration_sum", (BUSY, phase), _method_is(phase))
    c.gauge(["tgi_batch_current_size"], "running", _sum)
    c.gauge(["tgi_queue_size"], "waiting", _sum)
    reading = c.finish(samples, "tgi_batch_inference_count")
    if not reading.models:
        reading.models[UNKNOWN_MODEL] = ModelReading()
    return reading


PARSERS: dict[str, Callable[[str], EngineReading]] = {"vllm": parse_vllm, "sglang": parse_sglang, "tgi": parse_tgi}
# Engines whose pages give engine time per phase, so that energy can be split by it.
PHASE_TIME_ENGINES: frozenset[str] = frozenset({"tgi"})
