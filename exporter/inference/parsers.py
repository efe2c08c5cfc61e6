"""Engine /metrics text -> one normalized reading per model.

Each engine names the same facts differently; we only need a handful of them
(tokens by phase, prompt tokens by source, finished requests, phase time,
queue depth, KV-cache fill). Names and meanings as the engines' current source
defines them (fixture headers under ``tests/fixtures/inference`` name the files
and versions; ``docs/inference.md`` says what each one counts):

* vLLM V1 (label ``model_name``; ``engine`` = data-parallel engine index, every
  index a separate engine core, so counters are summed over it):
  ``vllm:prompt_tokens_total`` counts every prompt token, prefix-cache hits and
  KV received from another instance included. Releases since early 2026 split it:
  ``vllm:prompt_tokens_by_source_total{source=local_compute|local_cache_hit|
  external_kv_transfer}`` -> computed, cached, transferred; while the
  short-lived ``vllm:prompt_tokens_recomputed_total`` existed, the last token of
  a fully cached prompt was counted both as computed and as a cache hit, so it is
  taken out of the cached ones. Without the split the prompt tokens are
  ``unsplit`` (prefix-cache hit counters count queries, not prompt tokens, and
  are not used to guess). ``vllm:generation_tokens_total``,
  ``vllm:request_success_total{finished_reason}``,
  ``vllm:request_prefill_time_seconds`` / ``..._decode_...`` histograms
  (per-request times: request-seconds, not engine time), ``num_requests_running``
  / ``_waiting``, ``kv_cache_usage_perc`` (V0: ``gpu_cache_usage_perc``), a 0..1
  fraction despite the name; ``vllm:iteration_tokens_total`` ``_count`` is the
  engine's step count, used to notice a restart where
  ``process_start_time_seconds`` is missing.
* SGLang (label ``model_name``, ``name`` in old releases; scheduler series also
  carry ``engine_type, tp_rank, pp_rank, moe_ep_rank`` and, with data-parallel
  attention, ``dp_rank``). Every scheduler rank may publish the same counts
  (``--enable-metrics-for-all-schedulers``), so of each series only the lowest
  tensor/pipeline/expert rank is read, per data-parallel rank, and data-parallel
  ranks are summed: tokens are counted once per dp rank, never per tp/pp rank.
  ``sglang:realtime_tokens_total{mode=prefill_compute|prefill_cache|decode}``
  (counted as the scheduler runs them) gives computed, cached and decode tokens;
  else ``sglang:prompt_tokens_total`` (cache hits included) minus
  ``sglang:cached_tokens_total``; else the prompt tokens are ``unsplit``.
  ``sglang:gpu_execution_seconds_total{category}`` (older:
  ``sglang:forward_execution_seconds_total``), GPU time per forward mode, is the
  engine's phase time: extend/split_prefill -> prefill, decode/target_verify/
  draft_extend -> decode, mixed (chunked prefill batched with decode) ->
  prefill, stated as an assumption. ``sglang:num_requests_total``,
  ``num_running_reqs``, ``num_queue_reqs``, ``token_usage``.
* TGI (Rust metrics-exporter-prometheus, no model label, counters without
  ``_total``): ``tgi_batch_forward_duration{method="prefill"|"decode"}``
  histogram (engine time per phase), ``tgi_batch_inference_count{method}``
  (forward passes: the step count that tells a restart, since TGI exports no
  process start time), ``tgi_request_input_length`` and
  ``tgi_request_generated_tokens`` histograms (their ``_sum`` counts tokens:
  input length is recorded when a request is admitted, generated tokens when
  it succeeds; TGI does not split prompt tokens: ``unsplit``),
  ``tgi_request_success`` / ``tgi_request_count``, ``tgi_queue_size``,
  ``tgi_batch_current_size``. ``tgi_batch_concat{reason="chunking"}`` appears
  only where the model supports chunked prefill, whose prefill forwards also
  decode the running batch; ``reason="backpressure"|"wait_exceeded"`` only where
  it does not.

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

# Counter keys of a reading: (kind, phase); phase is "" where none applies, the prompt token source for PROMPT.
TOKENS, PROMPT, REQUESTS, BUSY, REQUEST_SECONDS, MARKED_ENERGY = (
    "tokens", "prompt_tokens", "requests", "busy_seconds", "request_phase_seconds", "marked_energy_joules")
CounterKey = tuple[str, str]
# Scratch keys summed while parsing and turned into the keys above before the reading is returned.
_ALL_PROMPT, _RECOMPUTED = ("_all_prompt", ""), ("_recomputed", "")
# SGLang scheduler labels naming ranks that each publish the same counts; dp_rank is not one (its ranks add up).
REPLICA_RANK_LABELS: tuple[str, ...] = ("tp_rank", "pp_rank", "moe_ep_rank")


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
    phase_time: bool = False  # the page reports the engine's own GPU/forward time per phase
    lanes: int = 1            # engine groups running forwards in parallel (SGLang dp ranks): busy time adds up
    chunked_prefill: bool | None = None  # the page shows prefill forwards that also decode (None: cannot tell)


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


def _rank(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 30, value)


def one_replica_rank(samples: list[_Sample]) -> list[_Sample]:
    """Of the samples that differ only in :data:`REPLICA_RANK_LABELS`, the one of the lowest ranks.

    Tensor-, pipeline- and expert-parallel ranks of one engine run the same
    batches: where each publishes its scheduler counters, summing them would
    multiply every token by the number of ranks. Everything else (dp_rank,
    model, mode, category) still tells series apart and is summed.
    """
    best: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[tuple[tuple[int, str], ...], _Sample]] = {}
    for s in samples:
        group = (s.key, tuple(sorted((k, v) for k, v in s.labels.items() if k not in REPLICA_RANK_LABELS)))
        rank = tuple(_rank(s.labels.get(k, "")) for k in REPLICA_RANK_LABELS)
        if group not in best or rank < best[group][0]:
            best[group] = (rank, s)
    return [s for _, s in best.values()]


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
        for m in self.models.values():
            _derive_prompt_sources(m.counters)
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


def _derive_prompt_sources(counters: dict[CounterKey, float]) -> None:
    """Scratch keys -> prompt tokens by source.

    ``_ALL_PROMPT`` beside a cached count (SGLang's prompt and cached totals) gives computed = all - cached;
    ``_RECOMPUTED`` (vLLM releases that counted a fully cached prompt's last token twice) leaves the cached
    count. A split that cannot be made (a counter left out as invalid) leaves no prompt series at all rather
    than a guessed one: what is missing is counted in the rejected samples.
    """
    every = counters.pop(_ALL_PROMPT, None)
    recomputed = counters.pop(_RECOMPUTED, None)
    cached = counters.get((PROMPT, catalog.PROMPT_SOURCE_CACHED))
    if every is not None and cached is not None and (PROMPT, catalog.PROMPT_SOURCE_COMPUTED) not in counters:
        if every >= cached:
            counters[(PROMPT, catalog.PROMPT_SOURCE_COMPUTED)] = every - cached
        else:  # the two are updated together at request end; cached above all prompt tokens is not a count
            counters.pop((PROMPT, catalog.PROMPT_SOURCE_CACHED))
    elif every is not None and cached is None and (PROMPT, catalog.PROMPT_SOURCE_COMPUTED) not in counters:
        counters[(PROMPT, catalog.PROMPT_SOURCE_UNSPLIT)] = every
    if recomputed is not None and cached is not None:
        counters[(PROMPT, catalog.PROMPT_SOURCE_CACHED)] = max(0.0, cached - recomputed)


# The prompt token sources that are this engine's prefill work (phase="prefill" tokens): computed where the
# engine splits its prompt tokens, all of them where it does not. One home for "prefill = computed".
PREFILL_SOURCES: tuple[str, ...] = (catalog.PROMPT_SOURCE_COMPUTED, catalog.PROMPT_SOURCE_UNSPLIT)


def _sum(a: float, b: float) -> float:
    return a + b


def _label_is(name: str, value: str) -> Callable[[dict[str, str]], bool]:
    """Selects the series whose label ``name`` is ``value``."""
    return lambda labels: labels.get(name) == value


VLLM_SOURCES = {"local_compute": catalog.PROMPT_SOURCE_COMPUTED, "local_cache_hit": catalog.PROMPT_SOURCE_CACHED,
                "external_kv_transfer": catalog.PROMPT_SOURCE_TRANSFERRED}


def parse_vllm(text: str) -> EngineReading:
    samples = _samples(text)
    c = _Collect(samples, lambda labels: labels.get("model_name") or UNKNOWN_MODEL)
    if not any(k.startswith("vllm:") for k in c.by_key):
        raise ParseError("no_engine_metrics", "no vllm: metrics on the page")
    if c.has("vllm:prompt_tokens_by_source"):
        for source, ours in VLLM_SOURCES.items():
            c.counter("vllm:prompt_tokens_by_source", (PROMPT, ours), _label_is("source", source))
        c.counter("vllm:prompt_tokens_recomputed", _RECOMPUTED)
    else:
        c.counter("vllm:prompt_tokens", _ALL_PROMPT)
    c.counter("vllm:generation_tokens", (TOKENS, "decode"))
    c.counter("vllm:request_success", (REQUESTS, ""))
    c.counter("vllm:request_prefill_time_seconds_sum", (REQUEST_SECONDS, "prefill"))
    c.counter("vllm:request_decode_time_seconds_sum", (REQUEST_SECONDS, "decode"))
    c.gauge(["vllm:num_requests_running"], "running", _sum)
    c.gauge(["vllm:num_requests_waiting"], "waiting", _sum)
    c.gauge(["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"], "kv_cache_ratio", max)
    return c.finish(samples, "vllm:iteration_tokens_total_count")


# SGLang forward modes (``ForwardMode`` names, lower case, ``forward_`` prefix in current releases) -> phase.
# MIXED is a chunked-prefill batch that also decodes the running requests: counted as prefill (stated).
SGLANG_PHASE_OF_MODE = {"extend": "prefill", "split_prefill": "prefill", "mixed": "prefill",
                        "decode": "decode", "target_verify": "decode", "draft_extend": "decode"}
SGLANG_REALTIME = {"prefill_compute": (PROMPT, catalog.PROMPT_SOURCE_COMPUTED),
                   "prefill_cache": (PROMPT, catalog.PROMPT_SOURCE_CACHED), "decode": (TOKENS, "decode")}


def _sglang_mode(labels: dict[str, str]) -> str:
    category = labels.get("category", "")
    return category[len("forward_"):] if category.startswith("forward_") else category


def _sglang_mode_is(mode: str) -> Callable[[dict[str, str]], bool]:
    return lambda labels: _sglang_mode(labels) == mode


def parse_sglang(text: str) -> EngineReading:
    samples = one_replica_rank(_samples(text))
    c = _Collect(samples, lambda labels: labels.get("model_name") or labels.get("name") or UNKNOWN_MODEL)
    if not any(k.startswith("sglang:") for k in c.by_key):
        raise ParseError("no_engine_metrics", "no sglang: metrics on the page")
    if c.has("sglang:realtime_tokens"):
        for mode, key in SGLANG_REALTIME.items():
            c.counter("sglang:realtime_tokens", key, _label_is("mode", mode))
    else:
        c.counter("sglang:prompt_tokens", _ALL_PROMPT)
        c.counter("sglang:cached_tokens", (PROMPT, catalog.PROMPT_SOURCE_CACHED))
        c.counter("sglang:generation_tokens", (TOKENS, "decode"))
    c.counter("sglang:num_requests", (REQUESTS, ""))
    busy_key = next((k for k in ("sglang:gpu_execution_seconds", "sglang:forward_execution_seconds") if c.has(k)), None)
    mixed = False
    lanes: set[str] = set()
    if busy_key is not None:
        for mode, phase in SGLANG_PHASE_OF_MODE.items():
            c.counter(busy_key, (BUSY, phase), _sglang_mode_is(mode))
        for s in c.by_key[busy_key]:
            lanes.add(s.labels.get("dp_rank", ""))
            mixed = mixed or (_sglang_mode(s.labels) == "mixed" and s.value > 0)
    c.gauge(["sglang:num_running_reqs"], "running", _sum)
    c.gauge(["sglang:num_queue_reqs"], "waiting", _sum)
    c.gauge(["sglang:token_usage"], "kv_cache_ratio", max)
    reading = c.finish(samples)
    reading.phase_time = busy_key is not None
    reading.lanes = max(1, len(lanes))
    # A mixed forward is the only kind that prefills and decodes at once; none so far (of a page that times its
    # forwards) means none has run. Without the timer the page cannot tell.
    reading.chunked_prefill = mixed if busy_key is not None else None
    return reading


def parse_tgi(text: str) -> EngineReading:
    samples = _samples(text)
    c = _Collect(samples, lambda labels: UNKNOWN_MODEL)  # TGI pages carry no model label
    if not any(k.startswith("tgi_") for k in c.by_key):
        raise ParseError("no_engine_metrics", "no tgi_ metrics on the page")
    c.counter("tgi_request_input_length_sum", _ALL_PROMPT)
    c.counter("tgi_request_generated_tokens_sum", (TOKENS, "decode"))
    c.counter("tgi_request_success" if c.has("tgi_request_success") else "tgi_request_count", (REQUESTS, ""))
    for phase in catalog.PHASES:
        c.counter("tgi_batch_forward_duration_sum", (BUSY, phase), _label_is("method", phase))
    c.gauge(["tgi_batch_current_size"], "running", _sum)
    c.gauge(["tgi_queue_size"], "waiting", _sum)
    reading = c.finish(samples, "tgi_batch_inference_count")
    if not reading.models:
        reading.models[UNKNOWN_MODEL] = ModelReading()
    reading.phase_time = c.has("tgi_batch_forward_duration_sum")
    reasons = {s.labels.get("reason") for s in c.by_key.get("tgi_batch_concat", ())}
    reading.chunked_prefill = True if "chunking" in reasons else (
        False if reasons & {"backpressure", "wait_exceeded"} else None)
    return reading


PARSERS: dict[str, Callable[[str], EngineReading]] = {"vllm": parse_vllm, "sglang": parse_sglang, "tgi": parse_tgi}
