"""Token-only engines: NNLS recovers known per-phase J/token from noisy mixed load, and declines otherwise."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattfleet.aggregator.inference.phase_estimator import (
    Declined,
    EstimateDeclined,
    Interval,
    PhaseEstimate,
    estimate_phase_energy,
    fit_phase_energy,
    nnls3,
)

# Ground truth for an 8B model on two H100s: idle 2 x 75 W; decode costs far more per token than prefill.
IDLE_W, A, B = 150.0, 0.05, 0.45


def synth(n: int, seed: int, noise: float = 0.03, prefill: tuple[float, float] = (0, 40000),
          decode: tuple[float, float] = (0, 4000), decode_per_prefill: float | None = None) -> list[Interval]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        seconds = rng.choice([15.0, 15.0, 15.0, 14.2, 16.1])  # scrape jitter
        p = rng.uniform(*prefill)
        d = rng.uniform(*decode) if decode_per_prefill is None else p * decode_per_prefill * rng.uniform(0.99, 1.01)
        joules = (IDLE_W * seconds + A * p + B * d) * (1 + rng.gauss(0, noise))
        out.append(Interval(seconds, p, d, joules))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_recovers_both_costs_within_5_percent_when_load_mixes_phases(seed: int) -> None:
    est = fit_phase_energy(synth(240, seed))
    assert isinstance(est, PhaseEstimate), est
    assert est.joules_per_prefill_token == pytest.approx(A, rel=0.05)
    assert est.joules_per_decode_token == pytest.approx(B, rel=0.05)
    assert est.idle_watts == pytest.approx(IDLE_W, rel=0.05)
    q = est.quality
    assert q.n_intervals == 240 and q.r_squared > 0.9 and q.condition_number < 20
    assert 0 < q.residual_rms_joules < 0.05 * np.mean([iv.joules for iv in synth(240, seed)])
    assert est.method == "token_fit"


def test_recovers_with_idle_intervals_and_bursts() -> None:
    data = synth(100, 11) + [Interval(15.0, 0.0, 0.0, IDLE_W * 15.0) for _ in range(30)] \
        + synth(40, 12, prefill=(100000, 200000), decode=(0, 200))
    est = estimate_phase_energy(data)
    assert est.joules_per_prefill_token == pytest.approx(A, rel=0.05)
    assert est.joules_per_decode_token == pytest.approx(B, rel=0.05)


def test_declines_with_too_few_intervals() -> None:
    result = fit_phase_energy(synth(8, 1))
    assert isinstance(result, Declined) and "too few intervals: 8" in result.reason


def test_declines_when_one_phase_is_never_active() -> None:
    data = [Interval(iv.seconds, iv.prefill_tokens, 0.0, iv.joules) for iv in synth(200, 2)]
    result = fit_phase_energy(data)
    assert isinstance(result, Declined) and "decode active in only 0 of 200" in result.reason
    with pytest.raises(EstimateDeclined, match="decode active in only 0"):
        estimate_phase_energy(data)


def test_declines_when_prefill_and_decode_move_together() -> None:
    result = fit_phase_energy(synth(300, 3, decode_per_prefill=0.1))
    assert isinstance(result, Declined), result
    assert "move together" in result.reason
    assert result.quality is not None and result.quality.condition_number > 100


def test_declines_when_the_data_is_mostly_noise() -> None:
    result = fit_phase_energy(synth(60, 4, noise=0.6))
    assert isinstance(result, Declined) and "too uncertain" in result.reason, result


def test_declines_when_the_fit_finds_no_cost_for_a_phase() -> None:
    rng = random.Random(5)
    data = [Interval(15.0, p, d, IDLE_W * 15 + A * p + rng.gauss(0, 5))
            for p, d in ((rng.uniform(0, 4e4), rng.uniform(0, 4e3)) for _ in range(100))]  # decode is free here
    result = fit_phase_energy(data)
    assert isinstance(result, Declined) and ("decode" in result.reason), result


def test_declines_bad_values() -> None:
    data = synth(20, 6)
    data[3] = Interval(15.0, -1.0, 10.0, 100.0)
    result = fit_phase_energy(data)
    assert isinstance(result, Declined) and "intervals [3]" in result.reason


# Inputs are token counts, seconds and joules: zero or of ordinary size. Values such as 1e-276 exercise
# float64's subnormal range, where the residual itself is not representable, not the estimator.
_QUANTITY = st.one_of(st.just(0.0), st.floats(1e-6, 100))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[_QUANTITY] * 4), min_size=4, max_size=12))
def test_nnls3_is_the_best_nonnegative_solution(rows: list[tuple[float, float, float, float]]) -> None:
    x = np.array([r[:3] for r in rows])
    y = np.array([r[3] for r in rows])
    coef = nnls3(x, y)
    assert np.all(coef >= 0)
    rss = float(np.sum((y - x @ coef) ** 2))
    # No point of a coarse non-negative grid around the answer does better.
    for delta in itertools.product((-0.05, 0.0, 0.05), repeat=3):
        probe = np.maximum(coef + np.array(delta), 0)
        assert float(np.sum((y - x @ probe) ** 2)) >= rss - 1e-6 * max(1.0, rss)


# --- from Prometheus to report rows ------------------------------------------------------------

KEY = {"node": "n1", "cluster": "c", "site": "s", "engine": "vllm", "model": "llama"}


def matrix(intervals: list[Interval], start: float = 7200.0, labels: dict[str, str] = KEY) -> tuple[list, list]:
    """Cumulative series as the energy and tokens queries return them (one step per interval)."""
    energy, tokens, _ = matrix_with_cached(intervals, start, labels)
    return energy, tokens


def matrix_with_cached(intervals: list[Interval], start: float = 7200.0, labels: dict[str, str] = KEY
                       ) -> tuple[list, list, list]:
    """As :func:`matrix`, and the cached prompt tokens' series (as the ``cached`` query returns it)."""
    t, e, p, d, c = start, 1e6, 0.0, 0.0, 0.0
    ev, pv, dv, cv = [[t, str(e)]], [[t, str(p)]], [[t, str(d)]], [[t, str(c)]]
    for iv in intervals:
        t += 60.0
        e, p, d, c = e + iv.joules, p + iv.prefill_tokens, d + iv.decode_tokens, c + iv.cached_tokens
        ev.append([t, str(e)])
        pv.append([t, str(p)])
        dv.append([t, str(d)])
        cv.append([t, str(c)])
    energy = [{"metric": dict(labels), "values": ev}]
    tokens = [{"metric": {**labels, "phase": "prefill"}, "values": pv},
              {"metric": {**labels, "phase": "decode"}, "values": dv}]
    return energy, tokens, [{"metric": dict(labels), "values": cv}]


def fake_query_range(energy: list, tokens: list, measured: list | None = None, cached: list | None = None):
    from wattfleet.aggregator.inference.phase_estimator import interval_queries

    q = interval_queries()
    answers = {q["energy"]: energy, q["tokens"]: tokens, q["measured"]: measured or [], q["cached"]: cached or []}
    return lambda expr: answers[expr]


def test_token_fit_rows_split_the_measured_energy_by_hour() -> None:
    from wattfleet.aggregator.inference.phase_estimator import token_fit

    rng = random.Random(21)
    data = []
    for _ in range(150):                                            # 150 one-minute steps: 2.5 hours
        p, d = rng.uniform(0, 160000), rng.uniform(0, 16000)
        data.append(Interval(60.0, p, d, (IDLE_W * 60 + A * p + B * d) * (1 + rng.gauss(0, 0.03))))
    energy, tokens = matrix(data)
    result = token_fit(fake_query_range(energy, tokens))
    (summary,) = result.summaries
    assert summary["status"] == "fitted" and summary["method"] == "token_fit" and summary["n_intervals"] == 150
    assert summary["joules_per_prefill_token"] == pytest.approx(A, rel=0.05)
    assert summary["joules_per_decode_token"] == pytest.approx(B, rel=0.05)
    assert summary["r_squared"] > 0.9 and summary["engine"] == "vllm" and summary["node"] == "n1"
    hours = sorted({r["hour_start"] for r in result.hourly})
    assert hours == [7200.0, 10800.0, 14400.0]                      # 60 + 60 + 30 steps
    assert sum(r["energy_joules"] for r in result.hourly) == pytest.approx(sum(iv.joules for iv in data))
    first = {r["phase"]: r for r in result.hourly if r["hour_start"] == 7200.0}
    assert first["prefill"]["tokens"] == pytest.approx(sum(iv.prefill_tokens for iv in data[:60]))
    assert first["idle"]["tokens"] == 0 and first["decode"]["method"] == "token_fit"
    assert sum(r["energy_joules"] for r in first.values()) == pytest.approx(sum(iv.joules for iv in data[:60]))


def test_token_fit_declines_in_a_summary_row_and_skips_measured_engines() -> None:
    from wattfleet.aggregator.inference.phase_estimator import token_fit

    steady = [Interval(60.0, 1000.0, 100.0, 60 * IDLE_W + A * 1000 + B * 100) for _ in range(40)]
    energy, tokens = matrix(steady)
    result = token_fit(fake_query_range(energy, tokens))
    (summary,) = result.summaries
    assert summary["status"] == "declined" and "move together" in summary["reason"]
    assert summary["joules_per_decode_token"] is None and result.hourly == []
    measured = [{"metric": dict(KEY), "values": [[7260.0, "1"]]}]     # this engine has phase_time energy
    assert token_fit(fake_query_range(energy, tokens, measured)).summaries == []


@pytest.mark.prometheus
@pytest.mark.parametrize("replicas", [1, 2])
def test_interval_queries_join_engine_gpus_in_promql(tmp_path, replicas) -> None:
    """promtool evaluates the queries: the engine's GPUs (and only those) make its energy, under the LLM's
    model label; cached prompt tokens per engine; engines with measured phase energy are listed. With
    ``replicas=2`` every series is there twice, differing only in an HA pair's replica label: the same
    answers (each copy collapses into one; a ``sum by`` would double them, a bare join would fail)."""
    import subprocess

    import yaml

    from promserver import PROMTOOL
    from wattfleet.aggregator.inference.phase_estimator import interval_queries
    from wattfleet.core import catalog

    node = 'node="n1",cluster="c",site="s"'
    gpu = f'{catalog.GPU_ENERGY.series}{{{node},uuid="GPU-x",gpu_model="NVIDIA H100",method="measured",source="nvml",'
    series = [
        {"series": gpu + 'gpu="0"}', "values": "0+6000x10"},
        {"series": gpu + 'gpu="1"}', "values": "0+12000x10"},
        {"series": gpu + 'gpu="2"}', "values": "0+3000x10"},       # not the engine's GPU
        {"series": f'{catalog.INFERENCE_ENGINE_GPUS.series}{{{node},engine="vllm",model="llama",gpu="0"}}',
         "values": "1x10"},
        {"series": f'{catalog.INFERENCE_ENGINE_GPUS.series}{{{node},engine="vllm",model="llama",gpu="1"}}',
         "values": "1x10"},
        {"series": f'{catalog.INFERENCE_TOKENS.series}{{{node},engine="vllm",model="llama",phase="prefill"}}',
         "values": "0+100x10"},
        {"series": f'{catalog.INFERENCE_PROMPT_TOKENS.series}{{{node},engine="vllm",model="llama",source="cached"}}',
         "values": "0+900x10"},
        {"series": f'{catalog.INFERENCE_PROMPT_TOKENS.series}{{{node},engine="vllm",model="llama",'
                   f'source="computed"}}', "values": "0+100x10"},
        {"series": f'{catalog.INFERENCE_PHASE_ENERGY.series}{{{node},engine="tgi",model="m",phase="decode",'
                   f'method="phase_time"}}', "values": "0+5x10"},
        {"series": f'{catalog.INFERENCE_PHASE_ENERGY.series}{{{node},engine="vllm",model="llama",phase="decode",'
                   f'method="token_fit"}}', "values": "0+5x10"},
    ]
    if replicas == 2:
        series = [{**s, "series": s["series"][:-1] + f',prometheus_replica="{r}"}}'}
                  for s in series for r in ("prom-a", "prom-b")]
    labels = {"node": "n1", "cluster": "c", "site": "s"}
    q = interval_queries()
    tests = [
        {"expr": q["energy"], "eval_time": "5m",
         "exp_samples": [{"labels": "{" + ",".join(f'{k}="{v}"' for k, v in
                                                   {**labels, "engine": "vllm", "model": "llama"}.items()) + "}",
                          "value": 5 * 18000}]},
        {"expr": q["tokens"], "eval_time": "5m",
         "exp_samples": [{"labels": '{node="n1",cluster="c",site="s",engine="vllm",model="llama",phase="prefill"}',
                          "value": 500}]},
        {"expr": q["cached"], "eval_time": "5m",
         "exp_samples": [{"labels": '{node="n1",cluster="c",site="s",engine="vllm",model="llama"}', "value": 4500}]},
        {"expr": q["measured"], "eval_time": "5m",
         "exp_samples": [{"labels": '{node="n1",cluster="c",site="s",engine="tgi",model="m"}', "value": 1}]},
    ]
    spec = {"rule_files": [], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}]}
    f = tmp_path / "queries.test.yaml"
    f.write_text(yaml.safe_dump(spec, sort_keys=False))
    res = subprocess.run([PROMTOOL, "test", "rules", str(f)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


# --- cached prompt tokens (issue 14) -----------------------------------------------------------------

C = 0.03 * A  # a cached token's cost (attention over the cached prefix), 3% of a computed one's


def cached_day(hit_rate: Callable[[int], float], seed: int = 5, n: int = 240) -> list[Interval]:
    """Minutes of an engine with a prefix cache: prompt and output mixes vary, ``hit_rate(i)`` of step i."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt, d = rng.uniform(20000, 160000), rng.uniform(1000, 16000)
        cached = prompt * hit_rate(i)
        computed = prompt - cached
        joules = (IDLE_W * 60 + A * computed + C * cached + B * d) * (1 + rng.gauss(0, 0.02))
        out.append(Interval(60.0, computed, d, joules, cached_tokens=cached))
    return out


def true_prefill_per_computed(data: list[Interval]) -> float:
    """Prefill-phase energy (computed tokens' and the cached prefix's cost) per computed token."""
    return sum(A * iv.prefill_tokens + C * iv.cached_tokens for iv in data) / sum(iv.prefill_tokens for iv in data)


def test_a_drifting_cache_hit_rate_fits_cached_tokens_as_their_own_term() -> None:
    from wattfleet.aggregator.inference.phase_estimator import CACHED_FITTED, token_fit

    data = cached_day(lambda i: 0.9 * (0.5 + 0.5 * math.sin(i / 20)))   # 0..90% over the window
    energy, tokens, cached = matrix_with_cached(data)
    result = token_fit(fake_query_range(energy, tokens, cached=cached))
    (s,) = result.summaries
    assert s["status"] == "fitted" and s["cached_term"] == CACHED_FITTED
    assert s["joules_per_cached_token"] == pytest.approx(C, rel=0.5)
    prefill = [r for r in result.hourly if r["phase"] == "prefill"]
    per_computed = sum(r["energy_joules"] for r in prefill) / sum(r["tokens"] for r in prefill)
    assert per_computed == pytest.approx(true_prefill_per_computed(data), rel=0.03)
    assert sum(r["tokens"] for r in prefill) == pytest.approx(sum(iv.prefill_tokens for iv in data))


def test_a_steady_cache_hit_rate_leaves_cached_tokens_out_and_says_why() -> None:
    from wattfleet.aggregator.inference.phase_estimator import CACHED_LEFT_OUT, token_fit

    data = cached_day(lambda i: 0.7)       # computed and cached tokens move together
    energy, tokens, cached = matrix_with_cached(data)
    (s,) = token_fit(fake_query_range(energy, tokens, cached=cached)).summaries
    assert s["status"] == "fitted" and s["cached_term"].startswith(f"{CACHED_LEFT_OUT}: ")
    assert "move together" in s["cached_term"] and s["joules_per_cached_token"] == 0.0
    # the computed tokens' coefficient carries the prefix's cost: still the prefill energy per computed token
    assert s["joules_per_prefill_token"] == pytest.approx(true_prefill_per_computed(data), rel=0.03)


def test_without_cached_tokens_the_fit_says_so() -> None:
    from wattfleet.aggregator.inference.phase_estimator import CACHED_NONE, fit_phase_energy

    est = fit_phase_energy(cached_day(lambda i: 0.0))
    assert isinstance(est, PhaseEstimate) and est.cached_term == CACHED_NONE
    assert est.joules_per_prefill_token == pytest.approx(A, rel=0.03)
