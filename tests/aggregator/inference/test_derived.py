"""Derived figures: per-token, per-request, tokens per joule and carbon per 1k tokens."""

from __future__ import annotations

from dataclasses import astuple

import pytest

from wattfleet.aggregator.inference.derived import PhaseFigures, grams_per_1k_tokens


def test_domain_worked_example_500_tokens() -> None:
    # 0.3 Wh/token = 1080 J/token; 500 tokens x PUE 1.1 x 400 g/kWh = 66 g, i.e. 132 g per 1k tokens.
    grams = grams_per_1k_tokens(1080.0, 400.0, 1.1)
    assert grams is not None
    assert grams == pytest.approx(132.0)
    assert grams / 1000 * 500 == pytest.approx(66.0)


def test_figures_from_phase_energy() -> None:
    f = PhaseFigures(prefill_joules=2000.0, decode_joules=18000.0, idle_joules=5000.0,
                     prefill_tokens=40000.0, decode_tokens=40000.0, requests=100.0)
    assert f.joules_per_prefill_token == pytest.approx(0.05)
    assert f.joules_per_decode_token == pytest.approx(0.45)
    assert f.joules_per_request == pytest.approx(250.0)          # idle included: it is part of serving
    assert f.tokens_per_joule == pytest.approx(80000 / 25000)    # tokens per joule, not per kJ
    # 25 kJ / 80k tokens = 0.3125 J/token -> per 1k: 312.5 J = 8.68e-5 kWh x 1.2 x 50 g/kWh
    assert f.grams_per_1k_tokens(50.0, 1.2) == pytest.approx(312.5 / 3.6e6 * 1.2 * 50)
    row = f.as_row(50.0, 1.2)
    assert set(row) == {"joules_per_prefill_token", "joules_per_decode_token", "joules_per_request",
                        "tokens_per_joule", "grams_co2e_per_1k_tokens"}
    assert "grams_co2e_per_1k_tokens" not in f.as_row()


def test_zero_denominators_give_none_not_zero() -> None:
    f = PhaseFigures(0.0, 0.0, 3600.0, 0.0, 0.0, 0.0)
    assert f.joules_per_prefill_token is None and f.joules_per_request is None
    assert f.tokens_per_joule == 0.0
    assert f.grams_per_1k_tokens(400.0, 1.5) is None


def test_invalid_pue_and_intensity_are_rejected() -> None:
    with pytest.raises(ValueError, match="PUE must be >= 1.0"):
        grams_per_1k_tokens(1.0, 400.0, 0.9)
    with pytest.raises(ValueError, match="grid intensity"):
        grams_per_1k_tokens(1.0, -1.0, 1.2)


def test_figures_from_rollup_rows_and_hourly_carbon() -> None:
    from wattfleet.aggregator.inference.derived import COLUMNS

    rows = [{"phase": "prefill", "it_kwh": 2000.0 / 3.6e6, "tokens": 40000.0},
            {"phase": "decode", "energy_joules": 18000.0, "tokens": 40000.0},
            {"phase": "idle", "it_kwh": 5000.0 / 3.6e6, "tokens": 0.0},
            {"phase": "decode", "energy_joules": 0.0, "tokens": 0.0}]
    f = PhaseFigures.from_phase_rows(rows, requests=100)
    # every field, as PhaseFigures' == compares them, two of them approximately
    assert astuple(f) == (pytest.approx(2000.0), 18000.0, pytest.approx(5000.0), 40000.0, 40000.0, 100)
    row = f.as_row(grams=2.0)                      # 2 g over 80k tokens, whatever the hours' intensities were
    assert tuple(row) == COLUMNS
    assert row["grams_co2e_per_1k_tokens"] == pytest.approx(0.025)
    assert row["joules_per_decode_token"] == pytest.approx(0.45)
    with pytest.raises(ValueError, match="unknown phase 'mixed'"):
        PhaseFigures.from_phase_rows([{"phase": "mixed", "tokens": 1}])
