"""Fault campaign, inference engine side: engine pages that lie, replicated endpoints, dips, marked energy
above the GPUs' own, churning model labels.

Each fault runs the real inference collector (``InferenceSensor``, ticked as the exporter's sampler ticks it,
or attached to a real ``Sampler`` over fake NVML for the marked energy) against the tests' fake engine
HTTP servers on 127.0.0.1 (``tests/fixtures/inference_engines.py``). Every loop is bounded; ``fast=True``
shrinks the label churn for the smoke test.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fault_common  # noqa: F401 - puts tests/ on sys.path (through scale_common) for the fixtures below

from fixtures.inference_engines import LLAMA, V1, EngineServer, one, tick, values
from wattfleet.core import catalog
from wattfleet.exporter.inference.attribution import MARKED_TOLERANCE_JOULES_PER_GPU, MARKED_TOLERANCE_RATIO
from wattfleet.exporter.inference.config import EngineConfig
from wattfleet.exporter.inference.sensor import InferenceSensor
from wattfleet.exporter.sensors.base import SensorResult

REASONS = ("not_finite", "negative", "too_large", "implausible_rate", "counter_dip", "marked_above_gpu_energy",
           "model_limit", "replicated_endpoint")


def rejected_by_reason(result: SensorResult) -> dict[str, float]:
    """``wattfleet_inference_rejected_samples_total`` summed per reason (reasons never seen left out)."""
    out = {reason: sum(values(result, catalog.INFERENCE_REJECTED, reason=reason)) for reason in REASONS}
    return {reason: n for reason, n in out.items() if n}


def non_finite(result: SensorResult) -> int:
    return sum(1 for s in result.samples if not math.isfinite(s.value))


def sensor_for(*engines: EngineConfig) -> InferenceSensor:
    """A generous sync wait: every tick sees its own scrape."""
    return InferenceSensor(list(engines), sync_wait=5.0)


def hostile_counter() -> dict[str, Any]:
    """(a) vLLM's prompt token counter reads 1e308, then NaN, then +Inf, then a good value again."""
    eng = EngineServer("vllm_v1.txt", **V1)
    sensor = sensor_for(EngineConfig("vllm", eng.url, ("0",)))
    steps: list[dict[str, Any]] = []
    try:
        r = tick(sensor, 1.0)
        now = 1.0
        for label, value in (("1e308", 1e308), ("NaN", float("nan")), ("+Inf", float("inf")),
                             ("good again (+500)", V1["prompt0"] + 500)):
            now += 1.0
            eng.values.update(prompt0=value)
            r = tick(sensor, now)
            steps.append({"page_value": label,
                          "exported_prefill_tokens": one(r, catalog.INFERENCE_TOKENS, model=LLAMA,
                                                         phase="prefill"),
                          "engine_up": one(r, catalog.INFERENCE_ENGINE_UP), "collector_errors": list(r.errors),
                          "non_finite_samples": non_finite(r), "rejected": rejected_by_reason(r)})
    finally:
        sensor.close()
        eng.stop()
    held = [s["exported_prefill_tokens"] for s in steps[:3]]
    return {"steps": steps, "exported_while_hostile": held, "unchanged_while_hostile": held == [0.0, 0.0, 0.0],
            "exported_after": steps[-1]["exported_prefill_tokens"], "truth_after": 500.0,
            "all_finite": all(s["non_finite_samples"] == 0 for s in steps),
            "rejected": steps[-1]["rejected"]}


def naive_sum(readings: list[float]) -> float:
    """What a collector summing positive steps and reading every drop as a restart would have exported."""
    total = 0.0
    for prev, cur in zip(readings, readings[1:], strict=False):
        total += cur - prev if cur >= prev else cur
    return total


def replicated_endpoint(scrapes: int = 14) -> dict[str, Any]:
    """(b) One URL answered in turn by two vLLM replicas (~1.0 M and ~0.9 M prompt tokens, each +1000 a scrape,
    the second one started later): the issue's 1 M prompt tokens read as 13 M in 14 s."""
    first = {**V1, "prompt0": 1_000_000, "gen0": 200_000}
    second = {"start": 1.76e9, "prompt0": 900_000, "gen0": 150_000}
    eng = EngineServer("vllm_v1.txt", **first)
    eng.replicas = [second]
    sensor = sensor_for(EngineConfig("vllm", eng.url, ("0", "1")))
    readings: list[float] = []
    refused_at: int | None = None
    try:
        r = SensorResult()
        for i in range(scrapes):
            turn = eng._turn   # which replica answers this scrape
            readings.append(float([first, second][turn % 2]["prompt0"]))
            r = tick(sensor, 1.0 + i)
            if r.errors and refused_at is None:
                refused_at = i + 1
            if turn % 2:   # both replicas processed 1000 more prompt tokens by the next round
                first["prompt0"] += 1000
                second["prompt0"] += 1000
                eng.values.update(prompt0=first["prompt0"])
        exported = one(r, catalog.INFERENCE_TOKENS, phase="prefill")
        truth = float(first["prompt0"] - 1_000_000 + second["prompt0"] - 900_000)
        out: dict[str, Any] = {
               "scrapes": scrapes, "refused_at_scrape": refused_at, "engine_up": one(r, catalog.INFERENCE_ENGINE_UP),
               "collector_errors": list(r.errors), "rejected": rejected_by_reason(r),
               "non_finite_samples": non_finite(r), "exported_prefill_tokens": exported,
               "truth_prefill_tokens": truth, "at_most_truth": exported <= truth,
               "naive_sum_prefill_tokens": naive_sum(readings),
               "running_gauges_exported": len(values(r, catalog.INFERENCE_RUNNING))}
    finally:
        sensor.close()
        eng.stop()
    return out


def dipping_counter(scrapes: int = 30, every: int = 6, dip: int = 500) -> dict[str, Any]:
    """(c) A single engine whose counter grows 100 tokens a scrape and reads ``dip`` lower every ``every``
    scrapes (a glitch, the next page is right again): the dip is never re-added as a restart."""
    start = 1_000_000
    eng = EngineServer("vllm_v1.txt", **{**V1, "prompt0": start})
    sensor = sensor_for(EngineConfig("vllm", eng.url, ("0",)))
    try:
        r = tick(sensor, 0.0)
        for i in range(1, scrapes + 1):
            true = start + 100 * i
            eng.values.update(prompt0=true - dip if i % every == 0 else true)
            r = tick(sensor, float(i))
        eng.values.update(prompt0=start + 100 * (scrapes + 1))   # a last, honest page
        r = tick(sensor, float(scrapes + 1))
        exported = one(r, catalog.INFERENCE_TOKENS, phase="prefill")
        out: dict[str, Any] = {"scrapes": scrapes + 1, "dips": scrapes // every, "dip_tokens": dip,
               "exported_prefill_tokens": exported, "truth_prefill_tokens": 100.0 * (scrapes + 1),
               "engine_up": one(r, catalog.INFERENCE_ENGINE_UP), "collector_errors": list(r.errors),
               "rejected": rejected_by_reason(r), "non_finite_samples": non_finite(r)}
    finally:
        sensor.close()
        eng.stop()
    out["equal"] = out["exported_prefill_tokens"] == out["truth_prefill_tokens"]
    return out


class _Clock:
    """A clock advanced by hand, shared by the fake GPUs and the sampler."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def marked_above_gpus() -> dict[str, Any]:
    """(d) The issue's 1.3e13 J claim, and a claim of 1000 J (above the 200 J drawn, below the rate bound)."""
    return {"claim_1.3e13": marked_claim(1.3e13), "claim_1000": marked_claim(1000.0)}


def marked_claim(claimed: float, watts: float = 100.0) -> dict[str, Any]:
    """vLLM's page reports ``marked`` phase energy, honest for a second, then ``claimed`` J more decode
    energy in one second, then honest again; two fake GPUs at ``watts`` W under a real ``Sampler``."""
    from wattfleet.exporter.inference.attach import attach_inference
    from wattfleet.exporter.sampler import Sampler
    from wattfleet.exporter.sensors.nvml import NvmlSensor
    from wattfleet.sim.fake_nvml import FakeNvml

    eng = EngineServer("vllm_v1.txt", **V1)
    marked = {"prefill": 0.0, "decode": 0.0, "idle": 0.0}
    eng.extra = lambda: "".join(f'{catalog.INFERENCE_PHASE_ENERGY.series}{{phase="{p}",method="marked"}} {j!r}\n'
                                for p, j in marked.items())
    clock = _Clock()
    nvml = FakeNvml.with_gpus(2, watts=watts, clock=clock)
    sampler = Sampler([NvmlSensor(nvml)], {"node": "n1"}, clock=clock)
    with tempfile.TemporaryDirectory(prefix="wattfleet-faults-inference-") as tmp:
        cfg = Path(tmp) / "engines.yaml"
        cfg.write_text(f"- engine: vllm\n  url: {eng.url}\n  gpus: ['0', '1']\n")
        sensor = attach_inference(sampler, cfg)
        try:
            updates: list[dict[str, float]] = [
                {}, {"prefill": 50.0, "decode": 120.0, "idle": 30.0}, {"decode": 120.0 + claimed},
                {"decode": 120.0 + claimed + 150.0, "idle": 80.0}]
            for i, update in enumerate(updates):
                if i:
                    clock.now += 1.0
                marked.update(update)
                sampler.sample_once()
            r = sensor.sample(clock())   # the last interval's GPU energy is recorded by now
            got = {p: one(r, catalog.INFERENCE_PHASE_ENERGY, phase=p, method=catalog.PHASE_METHOD_MARKED)
                   for p in ("prefill", "decode", "idle")}
            gpu_joules = sum(g.true_joules() for g in nvml.gpus)
            total = sum(got.values())
            out: dict[str, Any] = {"claimed_decode_joules": claimed, "page_marked_joules_total": sum(marked.values()),
                   "gpu_watts": watts * 2, "gpu_true_joules": gpu_joules, "exported_marked_joules": got,
                   "exported_marked_total": total, "honest_marked_total": 50.0 + 270.0 + 80.0,
                   "rejected": rejected_by_reason(r), "non_finite_samples": non_finite(r),
                   "intervals": len(updates) - 1,
                   # the collector's cap, summed over the intervals: measured x (1 + ratio) + joules per GPU
                   "cap_joules": gpu_joules * (1 + MARKED_TOLERANCE_RATIO)
                   + MARKED_TOLERANCE_JOULES_PER_GPU * len(nvml.gpus) * (len(updates) - 1),
                   "above_measured_joules": max(0.0, total - gpu_joules)}
            out["capped_by_gpu_energy"] = total <= out["cap_joules"]
        finally:
            sampler.stop()
            eng.stop()
    return out


def label_churn(models: int = 10_000, ticks: int = 3) -> dict[str, Any]:
    """(e) ``models`` never-seen model names on each of ``ticks`` pages (bench_inference_churn's harness,
    with the collector's default max_models); the full 20-tick run is in
    bench/results/bench_inference_churn_after.json."""
    import json

    import bench_inference_churn
    r = bench_inference_churn.run(models, ticks)
    full_path = Path(__file__).resolve().parent / "results" / "bench_inference_churn_after.json"
    full = json.loads(full_path.read_text())["results"] if full_path.exists() else None
    keep = ("labels_seen", "rss_start_mb", "rss_end_mb", "rss_peak_mb", "sample_seconds_p50", "sample_seconds_max",
            "series_exported_last_tick")
    return {"models_per_page": models, "ticks": ticks, **{k: r[k] for k in keep},
            "full_run": {k: full[k] for k in keep} if full else None,
            "full_run_file": "bench/results/bench_inference_churn_after.json" if full else None}


def run_all(fast: bool = False) -> dict[str, Any]:
    """Every inference fault above, timed."""
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "hostile_counter": hostile_counter, "replicated_endpoint": replicated_endpoint,
        "dipping_counter": dipping_counter, "marked_above_gpus": marked_above_gpus,
        "label_churn": (lambda: label_churn(1000, 3)) if fast else label_churn}
    out: dict[str, Any] = {}
    for name, step in steps.items():
        started = time.perf_counter()
        out[name] = step()
        out[name]["campaign_seconds"] = time.perf_counter() - started
    return out


if __name__ == "__main__":   # a quick look: python bench/fault_inference.py [--fast]
    import json
    print(json.dumps(run_all("--fast" in sys.argv), indent=1, default=str))
