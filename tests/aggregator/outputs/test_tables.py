"""Report tables computed in Python: the per-engine figures, and their CSV/Parquet files."""

from __future__ import annotations

import pytest

from wattfleet.aggregator.inference.derived import PROMPT_NOT_SPLIT, PROMPT_SPLIT, PhaseFigures
from wattfleet.aggregator.outputs.tables import ENGINE_REPORT_COLUMNS, engine_report_table, write_table

INPUTS = ["engine", "model", "methods", "prefill_kwh", "decode_kwh", "idle_kwh", "prefill_tokens",
          "decode_tokens", "requests", "attributed_requests", "scope2_location_kg", "hours_without_phase_energy",
          "fit_status", "fit_r_squared", "fit_intervals", "fit_reason", "fit_cached_term", "split_prefill_kwh",
          "split_prefill_tokens", "computed_tokens", "cached_tokens", "transferred_tokens", "unsplit_tokens",
          "split_node_hours", "unsplit_node_hours", "phase_attribution"]
NO_PROMPT = (None,) * 10  # an engine without prompt-token series (an exporter older than the split)


def test_report_table_matches_phase_figures():
    cols = INPUTS
    row = ("e", "m", "token_fit", 0.001, 0.002, 0.0005, 100.0, 50.0, 12.0, 10.0, 0.003, 0, "fitted", 0.99, 100, None,
           *NO_PROMPT)
    declined = ("e", "d", None, None, None, None, 100.0, 50.0, 10.0, None, None, 2, "declined", None, 30, "why",
                *NO_PROMPT)
    out_cols, out = engine_report_table(cols, [row, declined])
    assert tuple(out_cols) == ENGINE_REPORT_COLUMNS
    fig = PhaseFigures(3600.0, 7200.0, 1800.0, 100.0, 50.0, 10.0).as_row(grams=3.0)
    got = dict(zip(out_cols, out[0], strict=True))
    for k, v in fig.items():  # the report names the per-token emissions for what they include
        assert got["scope2_location_g_per_1k_tokens" if k == "grams_co2e_per_1k_tokens" else k] == pytest.approx(v)
    assert got["method"] == "token_fit" and got["requests"] == 12.0
    assert got["prompt_split"] == PROMPT_NOT_SPLIT and got["joules_per_computed_prefill_token"] is None
    assert got["cache_hit_ratio"] is None
    got = dict(zip(out_cols, out[1], strict=True))
    assert [got[c] for c in ENGINE_REPORT_COLUMNS[3:8]] == [None] * 5  # never 0 J/token for no energy
    assert got["method"] == "-" and got["fit_reason"] == "why"


def test_python_table_ships_as_csv_and_parquet_like_the_sql_tables(tmp_path):
    cols, rows = engine_report_table(INPUTS, [])
    paths = write_table(tmp_path, "inference_engines", cols, rows)
    assert [p.name for p in paths] == ["inference_engines.csv", "inference_engines.parquet"]
    assert paths[0].read_text().splitlines() == [",".join(ENGINE_REPORT_COLUMNS)]


def test_prompt_split_columns():
    """J per computed prefill token from the split hours only; hit ratios over split tokens only."""
    # 1 kWh prefill over 3.6e6 tokens in all hours; the split hours: 0.5 kWh over 1e6 computed tokens.
    split = ("vllm", "m", "phase_time", 1.0, 1.0, 0.0, 3.6e6, 1e6, 10.0, 10.0, 1.0, 0, None, None, None, None,
             "fitted", 0.5, 1e6, 1e6, 3e6, 1e6, 2e6, 30, 10, "phase_time: separate_phases (chunked prefill false)")
    whole = ("vllm", "w", "phase_time", 1.0, 1.0, 0.0, 1e6, 1e6, 10.0, 10.0, 1.0, 0, None, None, None, None,
             None, 1.0, 1e6, 1e6, 0.0, 0.0, 0.0, 5, 0, None)
    unsplit = ("tgi", "b", "phase_time", 1.0, 1.0, 0.0, 1e6, 1e6, 10.0, 10.0, 1.0, 0, None, None, None, None,
               None, None, None, 0.0, 0.0, 0.0, 5e6, 0, 40,
               "phase_time: mixed_forward_as_prefill (chunked prefill true)")
    cols, rows = engine_report_table(INPUTS, [split, whole, unsplit])
    got = [dict(zip(cols, r, strict=True)) for r in rows]
    assert got[0]["prompt_split"] == f"{PROMPT_SPLIT} in 30 of 40 node-hours"
    assert got[0]["joules_per_computed_prefill_token"] == pytest.approx(0.5 * 3.6e6 / 1e6)
    assert got[0]["cache_hit_ratio"] == pytest.approx(3 / 5)
    assert got[0]["transferred_prompt_ratio"] == pytest.approx(1 / 5)
    assert got[0]["fit_cached_tokens"] == "fitted"
    assert got[1]["prompt_split"] == PROMPT_SPLIT and got[1]["cache_hit_ratio"] == 0.0
    assert got[1]["joules_per_computed_prefill_token"] == pytest.approx(3.6)
    assert got[2]["prompt_split"] == PROMPT_NOT_SPLIT
    assert got[2]["joules_per_computed_prefill_token"] is None and got[2]["cache_hit_ratio"] is None
    assert got[2]["phase_attribution"] == "phase_time: mixed_forward_as_prefill (chunked prefill true)"
