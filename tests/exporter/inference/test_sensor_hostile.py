"""Engine pages that lie or misbehave, served over real HTTP: every re-exported value stays finite, bounded
and right, and each rejection is counted where the operator sees it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fixtures.inference_engines import (
    LLAMA,
    V1,
    EngineServer,
    one,
    poll_metrics,
    running_exporter,
    sensor_for,
    serve,
    tick,
    values,
)
from wattfleet.core import catalog
from wattfleet.exporter.inference.attach import attach_inference
from wattfleet.exporter.inference.config import EngineConfig
from wattfleet.exporter.inference.sensor import InferenceSensor
from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.sensors.base import SensorResult
from wattfleet.exporter.sensors.nvml import NvmlSensor
from wattfleet.sim.fake_nvml import FakeNvml


def rejected(result: SensorResult, reason: str) -> float:
    found = values(result, catalog.INFERENCE_REJECTED, reason=reason)
    return sum(found)


def assert_all_finite(result: SensorResult) -> None:
    bad = [(s.metric, s.labels, s.value) for s in result.samples if not math.isfinite(s.value)]
    assert bad == []


@pytest.mark.parametrize("value, reason", [
    (1e308, "too_large"), (float("nan"), "not_finite"), (float("inf"), "not_finite"), (-5.0, "negative"),
])
def test_a_bad_counter_value_is_rejected_counted_and_never_added(servers: list[EngineServer], value: float,
                                                                 reason: str) -> None:
    eng = serve(servers, "vllm_v1.txt", **V1)
    sensor = sensor_for(EngineConfig("vllm", eng.url, ("0",)))
    try:
        tick(sensor, 1.0)
        eng.values.update(prompt0=value)
        r = tick(sensor, 2.0)
        assert_all_finite(r)
        assert one(r, catalog.INFERENCE_TOKENS, model=LLAMA, phase="prefill") == 0
        assert rejected(r, reason) == 1
        assert one(r, catalog.INFERENCE_ENGINE_UP) == 1 and r.errors == []  # the page's fault, not the collector's
        eng.values.update(prompt0=1500)
        r = tick(sensor, 3.0)
        assert one(r, catalog.INFERENCE_TOKENS, model=LLAMA, phase="prefill") == 500  # from the last good value
        assert one(r, catalog.INFERENCE_TOKENS, model=LLAMA, phase="decode") == 0
    finally:
        sensor.close()


def test_a_huge_first_value_sets_no_baseline(servers: list[EngineServer]) -> None:
    eng = serve(servers, "vllm_v1.txt", **{**V1, "prompt0": 1e308})
    sensor = sensor_for(EngineConfig("vllm", eng.url, ("0",)))
    try:
        tick(sensor, 1.0)
        eng.values.update(prompt0=1000)
        tick(sensor, 2.0)
        eng.values.update(prompt0=1400)
        r = tick(sensor, 3.0)
        assert one(r, catalog.INFERENCE_TOKENS, model=LLAMA, phase="prefill") == 400
        assert rejected(r, "too_large") == 1
    finally:
        sensor.close()


def test_increases_beyond_the_plausible_rate_are_rejected(servers: list[EngineServer]) -> None:
    """Default: 1e6 tokens/s per GPU; configured lower for one engine. Busy seconds: elapsed x GPUs (+ slack)."""
    eng = serve(servers, "vllm_v1.txt", **V1)
    tgi = serve(servers, "tgi.txt", requests_in=1, requests=1, prefill_calls=10, decode_calls=10, prefill_s=1.0,
                decode_s=1.0, prompt=10, gen=10)
    sensor = sensor_for(EngineConfig("vllm", eng.url, ("0",), max_tokens_per_second=1000.0),
                        EngineConfig("tgi", tgi.url, ("1",), model="m"))
    try:
        tick(sensor, 1.0)
        eng.values.update(prompt0=1000 + 5000, gen0=100 + 900)    # 5000 tokens in 1 s > 1000/s; 900 < 1000
        tgi.values.update(prefill_s=1.0 + 1000.0, prompt=10 + 5e9, decode_s=1.5, prefill_calls=20)
        r = tick(sensor, 2.0)
        assert one(r, catalog.INFERENCE_TOKENS, engine="vllm", phase="prefill") == 0
        assert one(r, catalog.INFERENCE_TOKENS, engine="vllm", phase="decode") == 900
        assert one(r, catalog.INFERENCE_PHASE_BUSY, engine="tgi", phase="prefill") == 0
        assert one(r, catalog.INFERENCE_PHASE_BUSY, engine="tgi", phase="decode") == 0.5
        assert one(r, catalog.INFERENCE_TOKENS, engine="tgi", phase="prefill") == 0
        assert sum(values(r, catalog.INFERENCE_REJECTED, reason="implausible_rate")) == 3
        # Counting goes on from the rejected reading: the next plausible step is added.
        eng.values.update(prompt0=6000 + 700)
        r = tick(sensor, 3.0)
        assert one(r, catalog.INFERENCE_TOKENS, engine="vllm", phase="prefill") == 700
        assert_all_finite(r)
    finally:
        sensor.close()


def test_a_small_dip_is_not_a_restart(servers: list[EngineServer]) -> None:
    """A counter 1,000,000 -> 999,000 (start time unchanged) re-added would count a million tokens twice."""
    eng = serve(servers, "vllm_v1.txt", **{**V1, "prompt0": 1_000_000})
    sensor = sensor_for(EngineConfig("vllm", eng.url, ("0",)))
    try:
        tick(sensor, 1.0)
        eng.values.update(prompt0=999_000)
        r = tick(sensor, 2.0)
        assert one(r, catalog.INFERENCE_TOKENS, phase="prefill") == 0
        assert rejected(r, "counter_dip") == 1
        eng.values.update(prompt0=1_000_300)               # past the high-water mark again: only that counts
        r = tick(sensor, 3.0)
        assert one(r, catalog.INFERENCE_TOKENS, phase="prefill") == 300
        assert one(r, catalog.INFERENCE_ENGINE_UP) == 1
    finally:
        sensor.close()


def test_a_drop_to_near_zero_is_a_restart_even_without_a_start_time(servers: list[EngineServer]) -> None:
    sg = serve(servers, "sglang.txt", prompt=100_000, gen=5000, requests=50)
    sensor = sensor_for(EngineConfig("sglang", sg.url, ("0",)))
    try:
        tick(sensor, 1.0)
        sg.values.update(prompt=100_500)
        tick(sensor, 2.0)
        sg.values.update(prompt=300, gen=20, requests=1)    # the process restarted: its counters start over
        r = tick(sensor, 3.0)
        assert one(r, catalog.INFERENCE_TOKENS, phase="prefill") == 500 + 300
        assert one(r, catalog.INFERENCE_TOKENS, phase="decode") == 20
        assert rejected(r, "counter_dip") == 0 and one(r, catalog.INFERENCE_ENGINE_UP) == 1
    finally:
        sensor.close()


def test_dipping_counters_repeatedly_refuse_the_endpoint(servers: list[EngineServer]) -> None:
    """The issue's case: ~1 M prompt tokens dipping slightly every other scrape became 13 M in 14 s."""
    eng = serve(servers, "vllm_v1.txt", **{**V1, "prompt0": 1_000_000})
    sensor = sensor_for(EngineConfig("vllm", eng.url, ("0",)))
    try:
        r = tick(sensor, 1.0)
        for i in range(1, 15):
            eng.values.update(prompt0=1_000_000 + 100 * i - (2000 if i % 2 else 0))
            r = tick(sensor, 1.0 + i)
            assert_all_finite(r)
        assert one(r, catalog.INFERENCE_TOKENS, phase="prefill") <= 1400  # never more than the real growth
        assert one(r, catalog.INFERENCE_ENGINE_UP) == 0
        assert r.errors == ["replicated_endpoint"]
        assert rejected(r, "replicated_endpoint") >= 1 and rejected(r, "counter_dip") >= 3
        assert values(r, catalog.INFERENCE_RUNNING) == []  # no gauges from a refused endpoint
    finally:
        sensor.close()


@pytest.mark.parametrize("second_start", [1.76e9, 1.74e9])  # the other replica started later / earlier
def test_replicas_alternating_behind_one_url_are_refused(servers: list[EngineServer],
                                                          second_start: float) -> None:
    eng = serve(servers, "vllm_v1.txt", **{**V1, "prompt0": 1_000_000, "gen0": 200_000})
    eng.replicas = [{"start": second_start, "prompt0": 900_000, "gen0": 150_000}]
    sensor = sensor_for(EngineConfig("vllm", eng.url, ("0", "1")))
    try:
        results = [tick(sensor, float(t)) for t in range(1, 8)]
        r = results[-1]
        for res in results:
            assert_all_finite(res)
        assert one(r, catalog.INFERENCE_ENGINE_UP) == 0
        assert r.errors == ["replicated_endpoint"]
        assert rejected(r, "replicated_endpoint") >= 1
        # Neither replica's whole counter was ever added: no replica counted anything new.
        assert one(r, catalog.INFERENCE_TOKENS, phase="prefill") == 0
        assert one(r, catalog.INFERENCE_TOKENS, phase="decode") == 0
        refused_at = next(i for i, res in enumerate(results) if res.errors)
        assert refused_at <= 2  # told by the third scrape at the latest
    finally:
        sensor.close()


@pytest.mark.parametrize("fixture, first, second", [
    ("tgi.txt", dict(requests_in=1, requests=1, prefill_calls=100, decode_calls=9100, prefill_s=30.0,
                     decode_s=90.0, prompt=1_000_000, gen=200_000),
     dict(prefill_calls=90, decode_calls=8000, prefill_s=28.0, decode_s=85.0, prompt=980_000, gen=190_000)),
    ("sglang.txt", dict(prompt=1_000_000, gen=200_000, requests=500),
     dict(prompt=990_000, gen=199_000, requests=498)),
])
def test_replicas_without_a_start_time_are_told_by_their_dips(servers: list[EngineServer], fixture: str,
                                                               first: dict[str, float],
                                                               second: dict[str, float]) -> None:
    eng = serve(servers, fixture, **first)
    eng.replicas = [second]
    sensor = sensor_for(EngineConfig(fixture.split(".")[0], eng.url, ("0",), model="m"))
    try:
        results = [tick(sensor, float(t)) for t in range(1, 15)]
        r = results[-1]
        assert one(r, catalog.INFERENCE_ENGINE_UP) == 0 and r.errors == ["replicated_endpoint"]
        assert one(r, catalog.INFERENCE_TOKENS, phase="prefill") == 0
        assert all(v == 0 for v in values(r, catalog.INFERENCE_PHASE_BUSY))
        assert next(i for i, res in enumerate(results) if res.errors) <= 6
    finally:
        sensor.close()


def marked_page(joules: dict[str, float]) -> str:
    return "".join(f'{catalog.INFERENCE_PHASE_ENERGY.series}{{phase="{p}",method="marked"}} {j!r}\n'
                   for p, j in joules.items())


@pytest.mark.parametrize("claimed_decode, reason", [(1000.0, "marked_above_gpu_energy"),
                                                    (1.3e13, "implausible_rate")])
def test_marked_energy_is_capped_by_the_gpus_energy(servers: list[EngineServer], tmp_path: Path,
                                                    clock: Callable[[], float], claimed_decode: float,
                                                    reason: str) -> None:
    """Two GPUs at 100 W draw 200 J a second: an engine claiming more marked energy gets at most that."""
    eng = serve(servers, "vllm_v1.txt", **V1)
    marked = {"prefill": 0.0, "decode": 0.0, "idle": 0.0}
    eng.extra = lambda: marked_page(marked)
    nvml = FakeNvml.with_gpus(3, watts=100.0, clock=clock)
    sampler = Sampler([NvmlSensor(nvml)], {"node": "n1"}, clock=clock)
    cfg = tmp_path / "engines.yaml"
    cfg.write_text(f"- engine: vllm\n  url: {eng.url}\n  gpus: ['0', '1']\n")
    sensor = attach_inference(sampler, cfg)
    try:
        sampler.sample_once()                           # baseline
        clock.advance(1.0)  # type: ignore[attr-defined]
        marked.update(prefill=50.0, decode=120.0, idle=30.0)    # honest: 200 J
        sampler.sample_once()
        clock.advance(1.0)  # type: ignore[attr-defined]
        marked.update(decode=120.0 + claimed_decode)           # claims far more than the 200 J drawn
        sampler.sample_once()
        clock.advance(1.0)  # type: ignore[attr-defined]
        marked.update(decode=120.0 + claimed_decode + 150.0, idle=80.0)  # honest again: 200 J
        sampler.sample_once()
        r = sensor.sample(clock())                      # the last interval's GPU energy is recorded by now
        got = {p: one(r, catalog.INFERENCE_PHASE_ENERGY, phase=p, method=catalog.PHASE_METHOD_MARKED)
               for p in ("prefill", "decode", "idle")}
        gpu_joules = nvml.gpus[0].true_joules() + nvml.gpus[1].true_joules()
        assert gpu_joules == pytest.approx(600.0)
        assert sum(got.values()) <= gpu_joules * 1.05 + 20 * 3   # never more than the GPUs drew (+ tolerance)
        assert got["prefill"] == 50.0 and got["idle"] == 80.0
        capped = 200.0 * 1.05 + 10.0 * 2 if reason == "marked_above_gpu_energy" else 0.0
        assert got["decode"] == pytest.approx(120.0 + capped + 150.0)
        assert rejected(r, reason) == 1
        assert_all_finite(r)
    finally:
        sampler.stop()


def test_churning_model_labels_stay_bounded_in_series_memory_and_time(servers: list[EngineServer]) -> None:
    """10,000 model names over the engine's life: at most max_models tracked, the rest dropped and counted,
    idle ones expire and free their place."""
    eng = serve(servers, "vllm_v0.txt", prompt=1, gen=1, requests=1)
    turn = {"n": 0}

    def churn() -> str:
        base = turn["n"] * 1000
        turn["n"] += 1
        return "".join(f'vllm:prompt_tokens_total{{model_name="churn-{base + i}"}} {i}.0\n'
                       f'vllm:num_requests_running{{model_name="churn-{base + i}"}} 1.0\n' for i in range(1000))

    eng.extra = churn
    sensor = sensor_for(EngineConfig("vllm", eng.url, ("0",), max_models=100, model_expiry_seconds=2.5))
    state = sensor.engines[0]
    try:
        slowest = 0.0
        r = SensorResult()
        for t in range(10):                              # 10 pages x 1000 new names = 10,000 labels
            started = time.perf_counter()
            r = tick(sensor, float(t))
            slowest = max(slowest, time.perf_counter() - started)
            assert len(state.models) <= 100
            assert len(state.counters) <= 100 * 4 and len(state.gauges) <= 100
            assert len(values(r, catalog.INFERENCE_RUNNING)) <= 100
            assert_all_finite(r)
        assert rejected(r, "model_limit") >= 9000
        assert any(m.startswith("churn-9") for m in state.models.names())  # expired names made room for new ones
        assert slowest < 2.0  # generous for a loaded CI box; the bench measures it properly
        assert one(r, catalog.INFERENCE_ENGINE_UP) == 1
    finally:
        sensor.close()


def test_the_exporter_endpoint_never_serves_inf_or_nan(servers: list[EngineServer], tmp_path: Path) -> None:
    """The aggregator's increase() over a +Inf counter is +Inf for good: such a value must never be served."""
    eng = serve(servers, "vllm_v1.txt", **V1)
    eng.extra = lambda: (marked_page({"decode": 1e308, "idle": float("inf")})
                         + 'vllm:generation_tokens_total{engine="2",model_name="' + LLAMA + '"} 1e308\n')
    cfg = tmp_path / "engines.yaml"
    cfg.write_text(f"- {{engine: vllm, url: '{eng.url}', gpus: ['0']}}\n")
    with running_exporter(cfg, 1, {"node": "n1"}) as (sampler, sensor, url):
        text = poll_metrics(url, lambda t: 'reason="too_large"' in t and 'reason="not_finite"' in t,
                            before=lambda: eng.values.update(prompt0=eng.values["prompt0"] + 10, gen0=1e308))
        samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
        assert [s for s in samples if not math.isfinite(s.value)] == []
        assert catalog.INFERENCE_REJECTED.series in text and 'reason="too_large"' in text
        assert sensor in sampler.sensors


def test_sensor_state_alone_never_holds_a_non_finite_total() -> None:
    """No engine at all answers: nothing is invented."""
    sensor = InferenceSensor([EngineConfig("vllm", "http://127.0.0.1:9/metrics", ("0",), timeout_seconds=0.1)],
                             sync_wait=1.0)
    try:
        r = sensor.sample(1.0)
        assert_all_finite(r)
    finally:
        sensor.close()


def test_busy_time_never_exceeds_the_gpus_time_since_first_seen(servers: list[EngineServer]) -> None:
    """A batch may end in a later interval than it began (slack per interval), but the slack is spent once:
    an engine adding 4 s of busy time every second keeps only what one GPU's time allows."""
    tgi = serve(servers, "tgi.txt", requests_in=1, requests=1, prefill_calls=10, decode_calls=10, prefill_s=0.0,
                decode_s=0.0, prompt=10, gen=10)
    sensor = sensor_for(EngineConfig("tgi", tgi.url, ("0",), model="m"))
    try:
        r = tick(sensor, 0.0)
        for t in range(1, 21):
            tgi.values.update(decode_s=4.0 * t, decode_calls=10 + t)
            r = tick(sensor, float(t))
            assert one(r, catalog.INFERENCE_PHASE_BUSY, phase="decode") <= t + 5.0  # 1 GPU x (t + slack)
        assert rejected(r, "implausible_rate") >= 10
    finally:
        sensor.close()
