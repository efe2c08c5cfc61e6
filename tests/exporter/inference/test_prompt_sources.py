"""Every engine fixture page scraped over HTTP by the running exporter: prompt tokens by source, prefill =
computed, the attribution assumption, and SGLang's phase-time split across data-parallel ranks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fixtures.inference_engines import EngineServer, one, poll_metrics, running_exporter, serve, values
from wattfleet.core import catalog
from wattfleet.exporter.inference.attach import attach_inference
from wattfleet.exporter.inference.sensor import attribution_labels
from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.sensors.nvml import NvmlSensor
from wattfleet.sim.fake_nvml import FakeNvml

V_SPLIT = dict(start=1.76e9, compute0=1000, hit0=3000, ext0=0, compute1=500, hit1=500, ext1=100, prompt0=4000,
               prompt1=1100, cached0=3000, cached1=600, gen0=700, gen1=300, stop0=10, stop1=5, steps0=100, steps1=50)
V_SGLANG = dict(prompt=1000, cached=600, gen=300, requests=9, compute0=300, hit0=400, decode0=200, compute1=100,
                hit1=200, decode1=100, extend0=1.0, dec0=4.0, extend1=0.5, dec1=2.0)
V_TGI = dict(requests_in=5, requests=4, concat=1, prefill_calls=10, decode_calls=300, prefill_s=1.0, decode_s=4.0,
             prompt=4000, gen=900)
V_OLD = dict(start=1.75e9, prompt0=1000, prompt1=0, gen0=100, gen1=0, stop0=1, length0=0, stop1=0, prefill_s0=0.5,
             decode_s0=4.0)

# fixture, engine, model, values, increases, expected prompt tokens by source, expected attribution labels
CASES = [
    ("vllm_split.txt", "vllm", "meta-llama/Llama-3.1-8B-Instruct", V_SPLIT,
     dict(compute0=2000, hit0=6000, prompt0=8000, cached0=6000, ext1=300, prompt1=1300, cached1=800),
     {"computed": 1000, "cached": 3000, "transferred": 200}, ("token_fit", "unknown", "token_fit")),
    ("vllm_v1.txt", "vllm", "meta-llama/Llama-3.1-8B-Instruct", V_OLD, dict(prompt0=1500, prompt1=250),
     {"unsplit": 750}, ("token_fit", "unknown", "token_fit")),
    ("vllm_v0.txt", "vllm", "mistralai/Mistral-7B-Instruct-v0.3", dict(start=1.7e9, prompt=10, gen=1, requests=1),
     dict(prompt=40), {"unsplit": 30}, ("token_fit", "unknown", "token_fit")),
    ("sglang_ranks.txt", "sglang", "Qwen/Qwen3-32B", V_SGLANG, dict(compute0=1300, hit0=900, compute1=600),
     {"computed": 1500, "cached": 500}, ("phase_time", "false", "separate_phases")),
    ("sglang_forward_execution.txt", "sglang", "deepseek-ai/DeepSeek-V3",
     dict(compute=10, hit=10, decode=10, extend=1.0, dec=1.0, mixed=0.5, requests=1), dict(compute=110, hit=40),
     {"computed": 100, "cached": 30}, ("phase_time", "true", "mixed_forward_as_prefill")),
    ("sglang.txt", "sglang", "Qwen/Qwen2.5-7B-Instruct", dict(prompt=10, gen=5, requests=1), dict(prompt=60),
     {"unsplit": 50}, ("token_fit", "unknown", "token_fit")),
    ("tgi_chunked.txt", "tgi", "m", V_TGI, dict(prompt=4500, prefill_s=2.0),
     {"unsplit": 500}, ("phase_time", "true", "mixed_forward_as_prefill")),
    ("tgi.txt", "tgi", "m", dict(V_TGI, requests_in=5), dict(prompt=4400, prefill_s=2.0),
     {"unsplit": 400}, ("phase_time", "unknown", "mixed_forward_as_prefill")),
]


def _series(text: str, metric: catalog.Metric) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted((k, v) for k, v in s.labels.items() if k not in catalog.CONST_LABELS)): s.value
            for f in text_string_to_metric_families(text) for s in f.samples if s.name == metric.series}


@pytest.mark.parametrize("fixture, engine, model, start, bump, sources, attribution", CASES,
                         ids=[c[0] for c in CASES])
def test_every_fixture_through_the_exporter_scrape(servers: list[EngineServer], tmp_path: Path, fixture: str,
                                                    engine: str, model: str, start: dict[str, float],
                                                    bump: dict[str, float], sources: dict[str, float],
                                                    attribution: tuple[str, str, str]) -> None:
    eng = serve(servers, fixture, **start)
    cfg = tmp_path / "engines.yaml"
    extra = "\n  model: m" if engine == "tgi" else ""
    cfg.write_text(f"- engine: {engine}\n  url: {eng.url}\n  gpus: ['0']{extra}\n")
    prompt = catalog.INFERENCE_PROMPT_TOKENS
    with running_exporter(cfg, 1, {"node": "n1", "cluster": "c", "site": "s"}) as (_, _, url):
        poll_metrics(url, lambda t: prompt.series in t)   # first scrape: the baseline
        eng.values.update(bump)
        want = {(("engine", engine), ("model", model), ("source", s)): v for s, v in sources.items()}
        text = poll_metrics(url, lambda t: _series(t, prompt) == want)
        assert _series(text, prompt) == want
        prefill = sources.get("computed", sources.get("unsplit"))
        tokens = _series(text, catalog.INFERENCE_TOKENS)
        assert tokens[(("engine", engine), ("model", model), ("phase", "prefill"))] == prefill
        method, chunked, assumption = attribution
        assert _series(text, catalog.INFERENCE_ATTRIBUTION) == {
            (("assumption", assumption), ("chunked_prefill", chunked), ("engine", engine), ("method", method),
             ("model", model)): 1.0}


def test_tgi_chunked_prefill_declared_in_the_config(servers: list[EngineServer], tmp_path: Path) -> None:
    eng = serve(servers, "tgi.txt", **V_TGI)
    cfg = tmp_path / "engines.yaml"
    cfg.write_text(f"- {{engine: tgi, url: '{eng.url}', gpus: ['0'], model: m, chunked_prefill: false}}\n")
    with running_exporter(cfg, 1, {"node": "n1"}) as (_, _, url):
        text = poll_metrics(url, lambda t: catalog.INFERENCE_ATTRIBUTION.series in t)
        assert _series(text, catalog.INFERENCE_ATTRIBUTION) == {
            (("assumption", "separate_phases"), ("chunked_prefill", "false"), ("engine", "tgi"),
             ("method", "phase_time"), ("model", "m")): 1.0}


def test_attribution_labels() -> None:
    assert attribution_labels(False, True)["method"] == catalog.PHASE_METHOD_TOKEN_FIT
    assert attribution_labels(True, None)["assumption"] == catalog.ASSUME_MIXED_AS_PREFILL
    assert attribution_labels(True, False)["assumption"] == catalog.ASSUME_SEPARATE_PHASES
    assert attribution_labels(False, None, marked=True) == {
        "method": catalog.PHASE_METHOD_MARKED, "chunked_prefill": "unknown",
        "assumption": catalog.ASSUME_MIXED_AS_PREFILL}


def test_sglang_phase_time_split_over_data_parallel_ranks(servers: list[EngineServer], tmp_path: Path,
                                                          clock: Callable[[], float]) -> None:
    """Two dp ranks on four GPUs: their GPU times add up to twice the interval, so each phase's share of the
    energy is its summed time over 2 x the interval; tp ranks, which repeat the counts, add nothing."""
    sg = serve(servers, "sglang_ranks.txt", **V_SGLANG)
    nvml = FakeNvml.with_gpus(4, watts=300.0, clock=clock)
    sampler = Sampler([NvmlSensor(nvml)], {"node": "n1"}, clock=clock)
    cfg = tmp_path / "engines.yaml"
    cfg.write_text(f"- engine: sglang\n  url: {sg.url}\n  gpus: ['0', '1', '2', '3']\n")
    sensor = attach_inference(sampler, cfg)
    try:
        sampler.sample_once()
        assert sensor.wait_for_scrapes(5.0)
        clock.advance(10.0)  # type: ignore[attr-defined]
        # dp 0: 3 s extend + 5 s decode; dp 1: 1 s extend + 8 s decode, over 10 s.
        sg.values.update(extend0=4.0, dec0=9.0, extend1=1.5, dec1=10.0)
        sampler.sample_once()
        assert sensor.wait_for_scrapes(5.0)
        clock.advance(1.0)  # type: ignore[attr-defined]
        sampler.sample_once()
        assert sensor.wait_for_scrapes(5.0)
        r = sensor.sample(clock())
        joules = 4 * 300.0 * 10.0
        got = {p: one(r, catalog.INFERENCE_PHASE_ENERGY, engine="sglang", model="Qwen/Qwen3-32B", phase=p,
                      method=catalog.PHASE_METHOD_TIME) for p in ("prefill", "decode", "idle")}
        assert got["prefill"] == pytest.approx(joules * (3.0 + 1.0) / 20.0, rel=1e-6)
        assert got["decode"] == pytest.approx(joules * (5.0 + 8.0) / 20.0, rel=1e-6)
        assert sum(got.values()) == pytest.approx(4 * 300.0 * 11.0, rel=1e-6)  # every joule, once
        assert values(r, catalog.INFERENCE_PHASE_BUSY, phase="prefill") == [pytest.approx(4.0)]
    finally:
        sampler.stop()
