"""Engines served over real HTTP in their own formats: re-export, restarts, down, slow and garbage endpoints,
and TGI phase-time attribution against the fake GPUs' energy."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from string import Template

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
from promserver import free_port
from wattfleet.core import catalog
from wattfleet.exporter.inference.attach import attach_inference
from wattfleet.exporter.inference.config import EngineConfig
from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.sensors.nvml import NvmlSensor
from wattfleet.sim.fake_nvml import FakeNvml


def test_vllm_counters_reexported_monotonic_across_engine_restarts(servers: list[EngineServer]) -> None:
    eng = serve(servers, "vllm_v1.txt", **V1)
    sensor = sensor_for(EngineConfig("vllm", eng.url, ("0",)))
    try:
        tick(sensor, 1.0)                                   # first scrape: baseline only
        eng.values.update(prompt0=3000, gen0=400, stop0=5)
        tick(sensor, 2.0)
        r = tick(sensor, 3.0)
        assert one(r, catalog.INFERENCE_TOKENS, engine="vllm", model=LLAMA, phase="prefill") == 2000
        assert one(r, catalog.INFERENCE_TOKENS, engine="vllm", model=LLAMA, phase="decode") == 300
        assert one(r, catalog.INFERENCE_REQUESTS, engine="vllm", model=LLAMA) == 4
        assert one(r, catalog.INFERENCE_RUNNING, engine="vllm", model=LLAMA) == 8
        assert one(r, catalog.INFERENCE_KV_CACHE, engine="vllm", model=LLAMA) == 0.42
        assert one(r, catalog.INFERENCE_ENGINE_UP, engine="vllm", endpoint=eng.url.split("/")[2]) == 1
        assert one(r, catalog.INFERENCE_ENGINE_GPUS, engine="vllm", model=LLAMA, gpu="0") == 1
        # Restart: counters start again from 0 (values drop); the new process started after the last scrape.
        eng.values.update(start=time.time(), prompt0=500, gen0=50, stop0=1)
        tick(sensor, 4.0)
        r = tick(sensor, 5.0)
        assert one(r, catalog.INFERENCE_TOKENS, engine="vllm", model=LLAMA, phase="prefill") == 2500
        assert one(r, catalog.INFERENCE_TOKENS, engine="vllm", model=LLAMA, phase="decode") == 350
        # Restart between two scrapes that already passed the old value: the start time tells.
        eng.values.update(start=time.time() + 1, prompt0=900, gen0=80, stop0=2)
        tick(sensor, 6.0)
        r = tick(sensor, 7.0)
        assert one(r, catalog.INFERENCE_TOKENS, engine="vllm", model=LLAMA, phase="prefill") == 3400
        assert one(r, catalog.INFERENCE_TOKENS, engine="vllm", model=LLAMA, phase="decode") == 430
        assert one(r, catalog.INFERENCE_REQUESTS, engine="vllm", model=LLAMA) == 4 + 1 + 2
        assert r.errors == []
    finally:
        sensor.close()


def test_sglang_and_tgi_and_model_override(servers: list[EngineServer]) -> None:
    sg = serve(servers, "sglang.txt", prompt=10, gen=5, requests=1)
    tgi = serve(servers, "tgi.txt", requests_in=1, requests=1, prefill_calls=100, decode_calls=9100,
                prefill_s=1.0, decode_s=2.0, prompt=10, gen=20)
    sensor = sensor_for(EngineConfig("sglang", sg.url, ("0",)),
                        EngineConfig("tgi", tgi.url, ("1",), model="bigscience/bloom-560m"))
    try:
        tick(sensor, 1.0)
        sg.values.update(prompt=110, gen=55, requests=3)
        tgi.values.update(prefill_s=1.5, decode_s=4.0, prompt=60, gen=120, requests=2)
        tick(sensor, 2.0)
        r = tick(sensor, 3.0)
        q = "Qwen/Qwen2.5-7B-Instruct"
        assert one(r, catalog.INFERENCE_TOKENS, engine="sglang", model=q, phase="prefill") == 100
        assert one(r, catalog.INFERENCE_TOKENS, engine="sglang", model=q, phase="decode") == 50
        assert one(r, catalog.INFERENCE_WAITING, engine="sglang", model=q) == 26
        bloom = "bigscience/bloom-560m"
        assert one(r, catalog.INFERENCE_PHASE_BUSY, engine="tgi", model=bloom, phase="prefill") == 0.5
        assert one(r, catalog.INFERENCE_PHASE_BUSY, engine="tgi", model=bloom, phase="decode") == 2.0
        assert one(r, catalog.INFERENCE_TOKENS, engine="tgi", model=bloom, phase="decode") == 100
        assert values(r, catalog.INFERENCE_PHASE_ENERGY) == []  # no GPU energy source given
    finally:
        sensor.close()


@pytest.mark.parametrize("mode, reason", [
    ("down", "connection_refused"), ("slow", "timeout"), ("trickle", "timeout"), ("garbage", "parse_error"),
    ("status", "http_status"),
])
def test_failing_endpoint_is_down_with_a_reason_and_never_blocks(servers: list[EngineServer], mode: str,
                                                                 reason: str) -> None:
    good = serve(servers, "vllm_v0.txt", prompt=1, gen=1, requests=1)
    bad = serve(servers, "vllm_v1.txt", **V1)
    url = f"http://127.0.0.1:{free_port()}/metrics" if mode == "down" else bad.url
    bad.mode = mode
    sensor = sensor_for(EngineConfig("vllm", good.url, ("0",)),
                        EngineConfig("vllm", url, ("1",), timeout_seconds=0.5), sync_wait=0.02)
    try:
        started = time.perf_counter()
        r = sensor.sample(1.0)                  # the slow engine is still being scraped: sample waits 0.02 s only
        assert time.perf_counter() - started < 0.3  # well under the bad engine's 0.5 s deadline (CI headroom)
        assert sensor.wait_for_scrapes(3.0)
        assert time.perf_counter() - started < 1.0  # the deadline covers the whole exchange
        r = sensor.sample(2.0)
        assert set(r.errors) == {reason}
        assert one(r, catalog.INFERENCE_ENGINE_UP, endpoint=url.split("/")[2]) == 0
        assert one(r, catalog.INFERENCE_ENGINE_UP, endpoint=good.url.split("/")[2]) == 1
        assert one(r, catalog.INFERENCE_RUNNING, model="mistralai/Mistral-7B-Instruct-v0.3") == 4
        assert values(r, catalog.INFERENCE_RUNNING, model=LLAMA) == []  # no stale gauges from a dead engine
    finally:
        sensor.close()


def test_engine_down_then_back_keeps_its_counters(servers: list[EngineServer]) -> None:
    eng = serve(servers, "vllm_v0.txt", prompt=100, gen=10, requests=1)
    sensor = sensor_for(EngineConfig("vllm", eng.url, ("0",), timeout_seconds=0.2))
    model = "mistralai/Mistral-7B-Instruct-v0.3"
    try:
        tick(sensor, 1.0)
        eng.values.update(prompt=300)
        tick(sensor, 2.0)
        eng.mode = "garbage"
        r = tick(sensor, 3.0)
        assert r.errors == ["parse_error"]
        assert one(r, catalog.INFERENCE_TOKENS, phase="prefill") == 200  # kept while down: no gap in the series
        eng.mode = "ok"
        eng.values.update(prompt=350)
        tick(sensor, 5.0)
        r = tick(sensor, 6.0)
        assert one(r, catalog.INFERENCE_TOKENS, model=model, phase="prefill") == 250
        assert one(r, catalog.INFERENCE_ENGINE_UP) == 1
    finally:
        sensor.close()


def test_tgi_phase_time_split_matches_the_gpus_energy(servers: list[EngineServer], tmp_path: Path,
                                                      clock: Callable[[], float]) -> None:
    """Energy per interval is split by forward-time deltas; the phases add up to what the GPUs drew."""
    tgi = serve(servers, "tgi.txt", requests_in=0, requests=0, prefill_calls=100, decode_calls=9100,
                prefill_s=0.0, decode_s=0.0, prompt=0, gen=0)
    nvml = FakeNvml.with_gpus(3, watts=100.0, clock=clock)
    sampler = Sampler([NvmlSensor(nvml)], {"node": "n1"}, clock=clock)
    cfg = tmp_path / "engines.yaml"
    cfg.write_text(f"- engine: tgi\n  url: {tgi.url}\n  gpus: ['0', '2']\n  model: m\n")
    sensor = attach_inference(sampler, cfg)
    # (seconds, watts per GPU, prefill busy s, decode busy s) per interval
    plan = [(1.0, 100.0, 0.0, 0.0), (1.0, 400.0, 0.25, 0.5), (2.0, 600.0, 0.0, 2.0), (1.0, 300.0, 0.5, 0.0),
            (0.5, 500.0, 0.2, 0.2)]
    expected = {"prefill": 0.0, "decode": 0.0, "idle": 0.0}
    try:
        sampler.sample_once()
        assert sensor.wait_for_scrapes(5.0)
        busy = {"prefill": 0.0, "decode": 0.0}
        for seconds, watts, bp, bd in plan:
            for i in (0, 1, 2):
                nvml.gpus[i].set_power(watts)
            clock.advance(seconds)  # type: ignore[attr-defined]
            busy["prefill"] += bp
            busy["decode"] += bd
            tgi.values.update(prefill_s=busy["prefill"], decode_s=busy["decode"])
            joules = 2 * watts * seconds  # GPUs 0 and 2 only
            expected["prefill"] += joules * bp / seconds
            expected["decode"] += joules * bd / seconds
            expected["idle"] += joules * (seconds - bp - bd) / seconds
            sampler.sample_once()
            assert sensor.wait_for_scrapes(5.0)
        r = sensor.sample(clock())
        for phase, j in expected.items():
            got = one(r, catalog.INFERENCE_PHASE_ENERGY, engine="tgi", model="m", phase=phase,
                      method=catalog.PHASE_METHOD_TIME)
            assert got == pytest.approx(j, abs=0.01), phase
        gpu_joules = nvml.gpus[0].true_joules() + nvml.gpus[2].true_joules()
        total = sum(values(r, catalog.INFERENCE_PHASE_ENERGY, method=catalog.PHASE_METHOD_TIME))
        assert total == pytest.approx(gpu_joules, abs=0.01)  # every joule attributed, once
    finally:
        sampler.stop()


def test_exporter_endpoint_serves_inference_series_and_survives_a_dead_engine(
        servers: list[EngineServer], tmp_path: Path) -> None:
    eng = serve(servers, "sglang.txt", prompt=10, gen=5, requests=1)
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    cfg = tmp_path / "engines.yaml"
    cfg.write_text(f"- {{engine: sglang, url: '{eng.url}', gpus: ['0']}}\n"
                   f"- {{engine: vllm, url: '{dead}', gpus: ['1'], timeout_seconds: 0.2}}\n")
    with running_exporter(cfg, 2, {"node": "n1", "cluster": "c", "site": "s"}) as (sampler, sensor, url):
        text = poll_metrics(url, lambda t: catalog.INFERENCE_TOKENS.series in t
                            and 'reason="connection_refused"' in t)
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(text) for s in f.samples}
        names = {n for n, _ in samples}
        assert {catalog.GPU_ENERGY.series, catalog.INFERENCE_TOKENS.series, catalog.INFERENCE_ENGINE_UP.name,
                catalog.INFERENCE_KV_CACHE.name} <= names
        up = {dict(k)["engine"]: v for (n, k), v in samples.items() if n == catalog.INFERENCE_ENGINE_UP.name}
        assert up == {"sglang": 1.0, "vllm": 0.0}
        assert samples[(catalog.COLLECTOR_UP.name, (("cluster", "c"), ("collector", "nvml"), ("node", "n1"),
                                                    ("site", "s")))] == 1.0
        assert 'collector="inference",node="n1",reason="connection_refused"' in text
        assert sensor in sampler.sensors


def test_tgi_restart_without_start_time_is_told_by_its_forward_pass_count(servers: list[EngineServer]) -> None:
    """TGI exports no process start time: a drop in tgi_batch_inference_count marks the restart, so a counter
    that climbed past its old value between two scrapes still counts from 0."""
    tgi = serve(servers, "tgi.txt", requests_in=10, requests=10, prefill_calls=100, decode_calls=9100,
                prefill_s=3.0, decode_s=9.0, prompt=1000, gen=500)
    sensor = sensor_for(EngineConfig("tgi", tgi.url, ("0",), model="m"))
    try:
        tick(sensor, 1.0)
        tgi.values.update(prompt=1500, prefill_s=3.5, prefill_calls=110)
        r = tick(sensor, 2.0)
        assert one(r, catalog.INFERENCE_TOKENS, phase="prefill") == 500
        assert "process_start_time_seconds" not in tgi.body()
        # Restart: forward passes 9210 -> 60; prompt tokens 1500 -> 1800 (higher, yet all new).
        tgi.values.update(prefill_calls=10, decode_calls=50, prompt=1800, gen=20, requests=2, requests_in=2,
                          prefill_s=0.75, decode_s=1.25)
        r = tick(sensor, 3.0)
        assert one(r, catalog.INFERENCE_TOKENS, phase="prefill") == 500 + 1800
        assert one(r, catalog.INFERENCE_TOKENS, phase="decode") == 20
        assert one(r, catalog.INFERENCE_REQUESTS) == 2
        assert one(r, catalog.INFERENCE_PHASE_BUSY, phase="prefill") == pytest.approx(0.5 + 0.75)
        assert one(r, catalog.INFERENCE_PHASE_BUSY, phase="decode") == pytest.approx(1.25)
        # After the restart it is counted normally again.
        tgi.values.update(prompt=1900, prefill_calls=12)
        r = tick(sensor, 4.0)
        assert one(r, catalog.INFERENCE_TOKENS, phase="prefill") == 500 + 1900
        assert r.errors == []
    finally:
        sensor.close()


def test_marked_phases_reach_the_exporter_exactly_through_the_engine_page(servers: list[EngineServer],
                                                                          clock: Callable[[], float]) -> None:
    """Serving code marks phases with the Python API and registers the tracker on its /metrics page; the
    exporter re-exports method="marked" with the engine's labels, equal to what the fake GPUs drew, and
    keeps counting when the serving process restarts (a new tracker starts again from 0)."""
    from prometheus_client import CollectorRegistry, generate_latest

    from wattfleet.exporter.inference.phase import PhaseTracker

    nvml = FakeNvml.with_gpus(2, watts=80.0, clock=clock)
    eng = serve(servers, "vllm_v1.txt", **V1)
    holder: dict[str, PhaseTracker] = {}

    def page() -> str:
        registry = CollectorRegistry()
        registry.register(holder["t"])
        return generate_latest(registry).decode()

    eng.extra = page
    sensor = sensor_for(EngineConfig("vllm", eng.url, ("0", "1")))
    truth = {"prefill": 0.0, "decode": 0.0, "idle": 0.0}

    def run(state: str, watts: float, seconds: float) -> None:
        before = sum(g.true_joules() for g in nvml.gpus)
        for g in nvml.gpus:
            g.set_power(watts)
        clock.advance(seconds)  # type: ignore[attr-defined]
        truth[state] += sum(g.true_joules() for g in nvml.gpus) - before

    model = LLAMA
    try:
        holder["t"] = PhaseTracker(nvml, clock=clock)
        tick(sensor, 1.0)                                  # baseline: the tracker's zeros
        with holder["t"].phase("prefill"):
            run("prefill", 650.0, 0.2)
        holder["t"].begin("decode")
        run("decode", 400.0, 1.5)
        holder["t"].end("decode")
        run("idle", 90.0, 0.5)
        tick(sensor, 2.0)
        holder["t"] = PhaseTracker(nvml, clock=clock)      # the serving process restarted:
        eng.values.update(start=time.time())                # its marked counters grew, yet all of it is new
        with holder["t"].phase("decode"):
            run("decode", 380.0, 2.0)
        r = tick(sensor, 3.0)
        for phase, joules in truth.items():
            got = one(r, catalog.INFERENCE_PHASE_ENERGY, engine="vllm", model=model, phase=phase,
                      method=catalog.PHASE_METHOD_MARKED)
            assert got == pytest.approx(joules, abs=0.01), phase
        assert truth["decode"] == pytest.approx(2 * (400 * 1.5 + 380 * 2.0))
        assert one(r, catalog.INFERENCE_PHASE_BUSY, model=model, phase="decode") == pytest.approx(3.5)
        assert values(r, catalog.INFERENCE_PHASE_ENERGY, method=catalog.PHASE_METHOD_TIME) == []
        assert one(r, catalog.INFERENCE_ATTRIBUTION, engine="vllm", model=model,
                   method=catalog.PHASE_METHOD_MARKED) == 1
    finally:
        sensor.close()


@pytest.mark.parametrize("info, model", [
    ('{"model_id": "bigscience/bloom-560m", "model_dtype": "torch.float16", "max_input_tokens": 1024}',
     "bigscience/bloom-560m"),
    ("", "unknown"),                 # /info answers 404
    ("<html>oops</html>", "unknown"),
])
def test_tgi_model_name_comes_from_its_info_endpoint(servers: list[EngineServer], info: str, model: str) -> None:
    tgi = serve(servers, "tgi.txt", requests_in=1, requests=1, prefill_calls=1, decode_calls=1, prefill_s=0.5,
                decode_s=0.5, prompt=10, gen=20)
    tgi.info = info
    sensor = sensor_for(EngineConfig("tgi", tgi.url, ("0",)))
    try:
        tick(sensor, 1.0)
        tgi.info = '{"model_id": "changed/later"}'    # asked once: series never split between two names
        tgi.values.update(prompt=15)
        r = tick(sensor, 2.0)
        assert one(r, catalog.INFERENCE_TOKENS, engine="tgi", model=model, phase="prefill") == 5
        assert values(r, catalog.INFERENCE_TOKENS, model="changed/later") == []
        assert one(r, catalog.INFERENCE_ENGINE_GPUS, engine="tgi", model=model, gpu="0") == 1
    finally:
        sensor.close()


def test_with_a_start_time_a_step_count_drop_alone_is_not_a_restart(servers: list[EngineServer]) -> None:
    """A false restart would count every token twice: the start time, when the page has one, decides."""
    eng = serve(servers, "vllm_v1.txt", **V1, steps0=10422)
    count = 'vllm:iteration_tokens_total_count{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} '
    eng.template = Template(eng.template.template.replace(count + "10422.0", count + "$steps0"))
    sensor = sensor_for(EngineConfig("vllm", eng.url, ("0",)))
    try:
        tick(sensor, 1.0)
        eng.values.update(steps0=5, prompt0=1200)
        r = tick(sensor, 2.0)
        assert one(r, catalog.INFERENCE_TOKENS, model=LLAMA, phase="prefill") == 200
    finally:
        sensor.close()
