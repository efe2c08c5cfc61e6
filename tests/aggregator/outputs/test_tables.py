"""Report tables computed in Python: the per-engine figures, and their CSV/Parquet files."""

from __future__ import annotations

import pytest

from wattfleet.aggregator.inference.derived import PhaseFigures
from wattfleet.aggregator.outputs.tables import ENGINE_REPORT_COLUMNS, engine_report_table, write_table


def test_report_table_matches_phase_figures():
    cols = ["engine", "model", "methods", "prefill_kwh", "decode_kwh", "idle_kwh", "prefill_tokens",
            "decode_tokens", "requests", "attributed_requests", "scope2_location_kg", "hours_without_phase_energy",
            "fit_status", "fit_r_squared", "fit_intervals", "fit_reason"]
    row = ("e", "m", "token_fit", 0.001, 0.002, 0.0005, 100.0, 50.0, 12.0, 10.0, 0.003, 0, "fitted", 0.99, 100, None)
    declined = ("e", "d", None, None, None, None, 100.0, 50.0, 10.0, None, None, 2, "declined", None, 30, "why")
    out_cols, out = engine_report_table(cols, [row, declined])
    assert tuple(out_cols) == ENGINE_REPORT_COLUMNS
    fig = PhaseFigures(3600.0, 7200.0, 1800.0, 100.0, 50.0, 10.0).as_row(grams=3.0)
    got = dict(zip(out_cols, out[0], strict=True))
    for k, v in fig.items():
        assert got[k] == pytest.approx(v)
    assert got["method"] == "token_fit" and got["requests"] == 12.0
    got = dict(zip(out_cols, out[1], strict=True))
    assert [got[c] for c in ENGINE_REPORT_COLUMNS[3:8]] == [None] * 5  # never 0 J/token for no energy
    assert got["method"] == "-" and got["fit_reason"] == "why"


def test_python_table_ships_as_csv_and_parquet_like_the_sql_tables(tmp_path):
    cols, rows = engine_report_table(["engine", "model", "methods", "prefill_kwh", "decode_kwh", "idle_kwh",
                                      "prefill_tokens", "decode_tokens", "requests", "attributed_requests",
                                      "scope2_location_kg", "hours_without_phase_energy", "fit_status",
                                      "fit_r_squared", "fit_intervals", "fit_reason"], [])
    paths = write_table(tmp_path, "inference_engines", cols, rows)
    assert [p.name for p in paths] == ["inference_engines.csv", "inference_engines.parquet"]
    assert paths[0].read_text().splitlines() == [",".join(ENGINE_REPORT_COLUMNS)]
