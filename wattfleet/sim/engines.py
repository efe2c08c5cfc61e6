"""Simulated LLM serving engines (vLLM, SGLang, TGI) on a simulated node's GPUs.

Each engine serves its own /metrics page in its engine's current format (the
same layouts as the fixture pages under ``tests/fixtures/inference``, which name
the engines' source files), built from counters that follow the GPUs it runs on:
every simulated step, the GPU workloads (:class:`~wattfleet.sim.load.GpuWorkload`)
say how many seconds each board spent in prefill and in decode, and the engine
turns them into tokens at fixed per-board rates. So a computed prompt token
always costs the same prefill energy, which is the ground truth the exporter's
and aggregator's figures are checked against; cached prompt tokens (a prefix
cache whose hit ratio moves hour by hour) cost nothing. The prompt mix (how much
of the busy time is prefill) also moves hour by hour, as real traffic does, which
is what lets a token fit tell prefill from decode.

The exporter reads these pages through its real inference collector: the page
text is handed to it by :meth:`SimEngines.fetch` instead of an HTTP socket,
so a fleet of hundreds of engines needs no ports.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from wattfleet.exporter.inference.config import EngineConfig
from wattfleet.exporter.inference.scraper import FetchError
from wattfleet.sim.load import GpuModel

# Tokens per board-second at TDP 700 W (an 8B-class model on an H100), scaled by TDP for other boards.
PREFILL_TOKENS_PER_SECOND = 12_000.0
DECODE_TOKENS_PER_SECOND = 2_400.0
PROMPT_TOKENS_PER_REQUEST = 1_800.0
DECODE_SECONDS_PER_STEP = 0.025   # one decode forward (engine step) of a batch
PREFILL_SECONDS_PER_STEP = 0.2
# TGI with chunked prefill: this fraction of the decode work runs inside prefill forwards (the running batch
# decodes while new requests prefill), and so is timed as prefill by TGI.
TGI_DECODE_IN_PREFILL = 0.1
PREFILL_SHARE_RANGE = (0.03, 0.20)
MODEL_EXPIRY_SECONDS = 7 * 86400.0   # prefill's share of the busy time, drawn per engine per hour


@dataclass(frozen=True)
class EngineSpec:
    """One engine on a node: its kind, the model it serves, its GPUs and its prefix-cache hit ratio."""

    kind: str
    model: str
    gpus: tuple[int, ...]
    cache_hit_ratio: float  # mean share of prompt tokens served from the prefix cache (0 for no cache)
    hit_ratio_spread: float = 0.15  # the hourly hit ratio wanders this far either side of the mean


# The demo's engines: vLLM with prefix caching (hit ratios above one half are common in production chat and
# agent traffic), SGLang with its radix cache, TGI (whose page does not split prompt tokens at all).
ENGINE_MODELS = {"vllm": ("meta-llama/Llama-3.1-8B-Instruct", 0.6), "sglang": ("Qwen/Qwen3-32B", 0.45),
                 "tgi": ("mistralai/Mistral-7B-Instruct-v0.3", 0.3)}


def layout(gpus: int, cache_hit_ratio: float | None = None, spread: float = 0.15) -> list[EngineSpec]:
    """Engines for a node of ``gpus`` boards: vLLM on the first half (one data-parallel engine core per
    board), SGLang (tensor parallel over its boards) on the next quarter, TGI on the rest. ``cache_hit_ratio``
    sets every engine's mean prefix-cache hit ratio (default: each engine's own), ``spread`` its hourly swing."""
    if gpus <= 0:
        return []
    cuts = [max(1, gpus // 2), max(1, gpus // 2) + max(1, gpus // 4)]
    groups = [tuple(range(0, min(cuts[0], gpus))), tuple(range(cuts[0], min(cuts[1], gpus))),
              tuple(range(cuts[1], gpus))]
    return [EngineSpec(kind, ENGINE_MODELS[kind][0], g,
                       ENGINE_MODELS[kind][1] if cache_hit_ratio is None else cache_hit_ratio, spread)
            for kind, g in zip(("vllm", "sglang", "tgi"), groups, strict=True) if g]


class HourlyValue:
    """A value redrawn every simulated hour, linearly interpolated in between (reproducible from the seed)."""

    def __init__(self, rng: random.Random, low: float, high: float) -> None:
        self.seed = rng.getrandbits(32)
        self.low, self.high = low, high

    def _hour(self, h: int) -> float:
        return random.Random(self.seed ^ (h * 2654435761 & 0xFFFFFFFF)).uniform(self.low, self.high)

    def at(self, unix_seconds: float) -> float:
        h = unix_seconds / 3600.0
        i = math.floor(h)
        a, b = self._hour(i), self._hour(i + 1)
        return a + (b - a) * (h - i)


@dataclass
class _Counters:
    """Cumulative counts of one engine core (vLLM) or one engine (SGLang, TGI)."""

    computed: float = 0.0
    cached: float = 0.0
    decode: float = 0.0
    requests: float = 0.0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    prefill_steps: float = 0.0
    decode_steps: float = 0.0


@dataclass
class SimEngine:
    """One engine's state; :meth:`record` adds a step's work, :meth:`page` renders its /metrics text."""

    spec: EngineSpec
    board: GpuModel
    rng: random.Random
    start_time: float
    prefill_share: HourlyValue = field(init=False)
    hit_ratio: HourlyValue = field(init=False)
    cores: list[_Counters] = field(init=False)

    def __post_init__(self) -> None:
        self.prefill_share = HourlyValue(self.rng, *PREFILL_SHARE_RANGE)
        h, spread = self.spec.cache_hit_ratio, self.spec.hit_ratio_spread
        self.hit_ratio = HourlyValue(self.rng, max(0.0, h - spread), min(0.9, h + spread))
        # vLLM: one engine core per board (data parallel, label engine); SGLang and TGI: one engine.
        self.cores = [_Counters() for _ in (self.spec.gpus if self.spec.kind == "vllm" else (0,))]

    @property
    def url(self) -> str:
        return f"http://{self.spec.kind}.sim:8000/metrics"

    def config(self) -> EngineConfig:
        # TGI's page names no model and the simulated router serves no /info (as on --prometheus-port).
        # A simulated step may be many minutes: models must outlive it (the default expiry is 10 minutes).
        return EngineConfig(self.spec.kind, self.url, tuple(str(g) for g in self.spec.gpus),
                            model=self.spec.model if self.spec.kind == "tgi" else None,
                            model_expiry_seconds=MODEL_EXPIRY_SECONDS)

    def record(self, t0: float, t1: float, phase_seconds: Sequence[tuple[float, float]]) -> None:
        """Add the work of ``[t0, t1)``: ``phase_seconds[i]`` = (prefill s, decode s) of the engine's i-th board."""
        scale = self.board.tdp_watts / 700.0
        hit = min(max(self.hit_ratio.at((t0 + t1) / 2), 0.0), 0.9)
        for i, (prefill_s, decode_s) in enumerate(phase_seconds):
            core = self.cores[i if self.spec.kind == "vllm" else 0]
            computed = prefill_s * PREFILL_TOKENS_PER_SECOND * scale
            core.computed += computed
            core.cached += computed * hit / (1.0 - hit)
            core.decode += decode_s * DECODE_TOKENS_PER_SECOND * scale
            core.requests = (core.computed + core.cached) / PROMPT_TOKENS_PER_REQUEST
        boards = max(1, len(phase_seconds))
        # Engine time: a vLLM core per board; an SGLang or TGI engine's boards run its forwards together.
        times = list(phase_seconds) if self.spec.kind == "vllm" else [
            (sum(p for p, _ in phase_seconds) / boards, sum(d for _, d in phase_seconds) / boards)]
        for core, (prefill_s, decode_s) in zip(self.cores, times, strict=True):
            core.prefill_seconds += prefill_s
            core.decode_seconds += decode_s
            core.prefill_steps += prefill_s / PREFILL_SECONDS_PER_STEP
            core.decode_steps += decode_s / DECODE_SECONDS_PER_STEP

    def page(self) -> str:
        return {"vllm": self._vllm, "sglang": self._sglang, "tgi": self._tgi}[self.spec.kind]()

    # --- pages, in each engine's format (see tests/fixtures/inference) ----------------------------------
    def _vllm(self) -> str:
        m = self.spec.model
        out = ["# TYPE vllm:prompt_tokens_by_source_total counter"]
        for i, c in enumerate(self.cores):
            for source, v in (("local_compute", c.computed), ("local_cache_hit", c.cached),
                              ("external_kv_transfer", 0.0)):
                out.append(f'vllm:prompt_tokens_by_source_total{{engine="{i}",model_name="{m}",source="{source}"}} '
                           f"{math.floor(v)}.0")
        rows = {"vllm:prompt_tokens_total": lambda c: c.computed + c.cached,
                "vllm:generation_tokens_total": lambda c: c.decode,
                "vllm:iteration_tokens_total_count": lambda c: c.prefill_steps + c.decode_steps}
        for name, fn in rows.items():
            kind = "histogram" if name.endswith("_count") else "counter"
            out.append(f"# TYPE {name.removesuffix('_count') if kind == 'histogram' else name} {kind}")
            out += [f'{name}{{engine="{i}",model_name="{m}"}} {math.floor(fn(c))}.0' for i, c in enumerate(self.cores)]
        out.append("# TYPE vllm:request_success_total counter")
        out += [f'vllm:request_success_total{{engine="{i}",finished_reason="stop",model_name="{m}"}} '
                f"{math.floor(c.requests)}.0" for i, c in enumerate(self.cores)]
        out.append("# TYPE vllm:kv_cache_usage_perc gauge")
        out += [f'vllm:kv_cache_usage_perc{{engine="{i}",model_name="{m}"}} 0.5' for i in range(len(self.cores))]
        out += ["# TYPE process_start_time_seconds gauge", f"process_start_time_seconds {self.start_time}"]
        return "\n".join(out) + "\n"

    def _sglang(self) -> str:
        c, m = self.cores[0], self.spec.model
        out = [f'sglang:prompt_tokens_total{{engine_type="unified",model_name="{m}"}} '
               f"{math.floor(c.computed + c.cached)}.0",
               f'sglang:cached_tokens_total{{engine_type="unified",model_name="{m}"}} {math.floor(c.cached)}.0',
               f'sglang:generation_tokens_total{{engine_type="unified",model_name="{m}"}} {math.floor(c.decode)}.0',
               f'sglang:num_requests_total{{engine_type="unified",model_name="{m}"}} {math.floor(c.requests)}.0']
        for tp in range(len(self.spec.gpus)):  # every tp rank publishes (--enable-metrics-for-all-schedulers)
            ranks = f'engine_type="unified",model_name="{m}",moe_ep_rank="0",pp_rank="0",tp_rank="{tp}"'
            for mode, v in (("prefill_compute", c.computed), ("prefill_cache", c.cached), ("decode", c.decode)):
                out.append(f'sglang:realtime_tokens_total{{{ranks},mode="{mode}"}} {math.floor(v)}.0')
            for category, v in (("forward_extend", c.prefill_seconds), ("forward_decode", c.decode_seconds)):
                out.append(f'sglang:gpu_execution_seconds_total{{{ranks},category="{category}"}} {v!r}')
            out.append(f"sglang:token_usage{{{ranks}}} 0.4")
        return "\n".join(["# TYPE sglang:prompt_tokens_total counter", *out]) + "\n"

    def _tgi(self) -> str:
        c = self.cores[0]
        folded = TGI_DECODE_IN_PREFILL * c.decode_seconds  # chunked prefill: decode inside prefill forwards
        out = ["# TYPE tgi_batch_concat counter",
               f'tgi_batch_concat{{reason="chunking"}} {math.floor(c.prefill_steps)}',
               "# TYPE tgi_batch_inference_count counter",
               f'tgi_batch_inference_count{{method="prefill"}} {math.floor(c.prefill_steps)}',
               f'tgi_batch_inference_count{{method="decode"}} {math.floor(c.decode_steps)}',
               "# TYPE tgi_batch_forward_duration histogram",
               f'tgi_batch_forward_duration_sum{{method="prefill"}} {c.prefill_seconds + folded!r}',
               f'tgi_batch_forward_duration_count{{method="prefill"}} {math.floor(c.prefill_steps)}',
               f'tgi_batch_forward_duration_sum{{method="decode"}} {c.decode_seconds - folded!r}',
               f'tgi_batch_forward_duration_count{{method="decode"}} {math.floor(c.decode_steps)}',
               "# TYPE tgi_request_input_length histogram",
               f"tgi_request_input_length_sum {math.floor(c.computed + c.cached)}",
               f"tgi_request_input_length_count {math.floor(c.requests)}",
               "# TYPE tgi_request_generated_tokens histogram",
               f"tgi_request_generated_tokens_sum {math.floor(c.decode)}",
               f"tgi_request_generated_tokens_count {math.floor(c.requests)}",
               "# TYPE tgi_request_success counter", f"tgi_request_success {math.floor(c.requests)}",
               "# TYPE tgi_queue_size gauge", "tgi_queue_size 0"]
        return "\n".join(out) + "\n"


class SimEngines:
    """The engines of one node, and the fetch function the exporter's inference collector scrapes them with."""

    def __init__(self, specs: Sequence[EngineSpec], board: GpuModel, rng: random.Random, start_time: float) -> None:
        self.engines = [SimEngine(s, board, random.Random(rng.getrandbits(64)), start_time) for s in specs]
        self.by_url = {e.url: e for e in self.engines}

    def configs(self) -> list[EngineConfig]:
        return [e.config() for e in self.engines]

    def fetch(self, url: str, timeout: float) -> str:
        """The page at ``url`` (the collector's fetch); the TGI router's /info is not served here."""
        engine = self.by_url.get(url)
        if engine is None:
            raise FetchError("http_status", f"HTTP 404 Not Found ({url})")
        return engine.page()

    def prefill_share_of(self, gpu: int) -> HourlyValue | None:
        """The prompt mix of the engine running on board ``gpu`` (None: no engine there)."""
        return next((e.prefill_share for e in self.engines if gpu in e.spec.gpus), None)

    def record(self, t0: float, t1: float, phase_seconds: Sequence[tuple[float, float]]) -> None:
        """Feed each engine the (prefill s, decode s) of its boards over ``[t0, t1)``."""
        for e in self.engines:
            e.record(t0, t1, [phase_seconds[g] for g in e.spec.gpus])
