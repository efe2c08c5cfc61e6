"""Token-only engines: NNLS recovers known per-phase J/token from noisy mixed load, and declines otherwise."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattfleet.aggregator.phase_estimator import (Declined, EstimateDeclined, Interval, PhaseEstimate,
                                                  estimate_phase_energy, fit_phase_energy, nnls3)

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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[st.floats(0, 100, allow_nan=False)] * 4), min_size=4, max_size=12))
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
