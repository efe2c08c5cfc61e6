"""Simulated engines: their pages are read by the real parsers as the engines' own, their counts follow the GPU
workloads (a computed token always costs the same), and a fleet with engines exports the inference series."""

from __future__ import annotations

import random

import pytest

from wattfleet.core import catalog
from wattfleet.exporter.inference.parsers import BUSY, PARSERS, PROMPT, REQUESTS, TOKENS
from wattfleet.exporter.inference.scraper import FetchError
from wattfleet.sim.config import FleetConfig
from wattfleet.sim.engines import (
    DECODE_TOKENS_PER_SECOND,
    PREFILL_TOKENS_PER_SECOND,
    TGI_DECODE_IN_PREFILL,
    SimEngines,
    layout,
)
from wattfleet.sim.fleet import Fleet
from wattfleet.sim.load import gpu_model

H100 = gpu_model("h100")


def test_layout_gives_every_board_one_engine() -> None:
    assert layout(0) == []
    assert [(e.kind, e.gpus) for e in layout(1)] == [("vllm", (0,))]
    assert [(e.kind, e.gpus) for e in layout(4)] == [("vllm", (0, 1)), ("sglang", (2,)), ("tgi", (3,))]
    assert [(e.kind, e.gpus) for e in layout(8)] == [("vllm", (0, 1, 2, 3)), ("sglang", (4, 5)), ("tgi", (6, 7))]


def engines(gpus: int = 8) -> SimEngines:
    sim = SimEngines(layout(gpus), H100, random.Random(3), 1.7e9)
    sim.record(1.7e9, 1.7e9 + 900, [(10.0 + g, 100.0 + g) for g in range(gpus)])
    return sim


def test_pages_parse_as_each_engines_own_format() -> None:
    sim = engines()
    vllm, sglang, tgi = sim.engines
    v = PARSERS["vllm"](sim.fetch(vllm.url, 1.0)).models[vllm.spec.model].counters
    computed = sum(10.0 + g for g in range(4)) * PREFILL_TOKENS_PER_SECOND
    assert v[(PROMPT, "computed")] == pytest.approx(computed, abs=4)  # floored per engine core
    assert v[(PROMPT, "cached")] > 0 and v[(PROMPT, "transferred")] == 0
    assert v[(TOKENS, "decode")] == pytest.approx(sum(100.0 + g for g in range(4)) * DECODE_TOKENS_PER_SECOND, abs=4)
    assert v[(REQUESTS, "")] > 0
    s = PARSERS["sglang"](sim.fetch(sglang.url, 1.0))
    sc = s.models[sglang.spec.model].counters
    # Two tp ranks publish the same counts: read once. Engine time is the mean over its boards.
    assert sc[(PROMPT, "computed")] == pytest.approx((14.0 + 15.0) * PREFILL_TOKENS_PER_SECOND, abs=2)
    assert sc[(BUSY, "prefill")] == pytest.approx(14.5) and sc[(BUSY, "decode")] == pytest.approx(104.5)
    assert s.phase_time and s.chunked_prefill is False
    t = PARSERS["tgi"](sim.fetch(tgi.url, 1.0))
    tc = t.models["unknown"].counters
    assert t.chunked_prefill is True and (PROMPT, "unsplit") in tc
    # Chunked prefill: part of the decode runs inside prefill forwards and is timed as prefill.
    assert tc[(BUSY, "prefill")] == pytest.approx(16.5 + TGI_DECODE_IN_PREFILL * 106.5)
    with pytest.raises(FetchError):
        sim.fetch("http://tgi.sim:8000/info", 1.0)
    assert [c.model for c in sim.configs()] == [None, None, tgi.spec.model]  # TGI's name from the config


def test_cache_hit_ratio_and_prompt_mix_move_by_the_hour_within_bounds() -> None:
    sim = engines()
    vllm = sim.engines[0]
    hits = [vllm.hit_ratio.at(1.7e9 + h * 3600) for h in range(48)]
    assert 0.45 <= min(hits) < max(hits) <= 0.75
    shares = [vllm.prefill_share.at(1.7e9 + h * 3600) for h in range(48)]
    assert 0.03 <= min(shares) < max(shares) <= 0.2
    assert sim.prefill_share_of(0) is vllm.prefill_share and sim.prefill_share_of(99) is None


def test_a_fleet_with_engines_exports_prompt_sources_and_phase_energy() -> None:
    cfg = FleetConfig(nodes=1, gpus_per_node=4, interval=1.0, acceleration=900.0, start=1.7e9, seed=7, engines=True)
    with Fleet(cfg) as fleet:
        fleet.step(6)
        result = fleet.nodes[0].sampler.last_results["inference"]
    got = {(s.metric, tuple(sorted(s.labels.items()))): s.value for s in result.samples}
    assert not result.errors

    def value(metric: catalog.Metric, **labels: str) -> float:
        return got[(metric.name, tuple(sorted(labels.items())))]

    llama = "meta-llama/Llama-3.1-8B-Instruct"
    computed = value(catalog.INFERENCE_PROMPT_TOKENS, engine="vllm", model=llama, source="computed")
    cached = value(catalog.INFERENCE_PROMPT_TOKENS, engine="vllm", model=llama, source="cached")
    assert computed > 0 and 0.3 < cached / (cached + computed) < 0.8
    assert value(catalog.INFERENCE_TOKENS, engine="vllm", model=llama, phase="prefill") == computed
    for engine, model in (("sglang", "Qwen/Qwen3-32B"), ("tgi", "mistralai/Mistral-7B-Instruct-v0.3")):
        assert value(catalog.INFERENCE_PHASE_ENERGY, engine=engine, model=model, phase="prefill",
                     method=catalog.PHASE_METHOD_TIME) > 0
    assert value(catalog.INFERENCE_ATTRIBUTION, engine="tgi", model="mistralai/Mistral-7B-Instruct-v0.3",
                 method="phase_time", chunked_prefill="true", assumption="mixed_forward_as_prefill") == 1


def test_without_engines_the_workloads_are_unchanged() -> None:
    """Engines are opt-in: a fleet without them draws exactly what it drew before they existed."""
    cfg = FleetConfig(nodes=1, gpus_per_node=2, interval=1.0, acceleration=900.0, start=1.7e9, seed=7)
    with Fleet(cfg) as fleet:
        fleet.step(3)
        assert fleet.nodes[0].engines is None and "inference" not in fleet.nodes[0].sampler.last_results


def test_the_hit_ratio_can_be_set_for_every_engine() -> None:
    specs = layout(4, cache_hit_ratio=0.8, spread=0.0)
    assert {(s.cache_hit_ratio, s.hit_ratio_spread) for s in specs} == {(0.8, 0.0)}
    sim = SimEngines(specs, H100, random.Random(1), 1.7e9)
    assert {round(e.hit_ratio.at(1.7e9 + h * 1800), 9) for e in sim.engines for h in range(10)} == {0.8}
    with pytest.raises(ValueError, match="hit ratio"):
        FleetConfig(engines=True, engine_cache_hit_ratio=0.95).validate()
