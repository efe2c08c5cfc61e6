"""The staging layer's column lists: the row dataclasses name the columns, the tables agree."""

from __future__ import annotations

from dataclasses import fields

from wattfleet import sql
from wattfleet.aggregator.ingest.grid_load import INTENSITY_COLUMNS
from wattfleet.aggregator.ingest.telemetry import (
    CollectorErrorRow,
    EnergyRow,
    InferenceRow,
    PromptTokenRow,
    WorkloadRow,
)
from wattfleet.aggregator.ingest.writer import (
    COLLECTOR_ERROR_COLUMNS,
    ENERGY_COLUMNS,
    INFERENCE_COLUMNS,
    PROMPT_TOKEN_COLUMNS,
    WORKLOAD_COLUMNS,
)
from wattfleet.aggregator.store.connection import open_store


def _table_columns(con, table: str) -> list[str]:
    return [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                                      "ORDER BY ordinal_position", [table]).fetchall()]


def test_row_dataclasses_are_the_staging_tables_columns():
    con = open_store(":memory:")
    assert [f.name for f in fields(EnergyRow)] == _table_columns(con, "stg_energy_hourly")
    assert [f.name for f in fields(InferenceRow)] == _table_columns(con, "stg_inference_hourly")
    assert [f.name for f in fields(CollectorErrorRow)] == _table_columns(con, "stg_collector_errors_hourly")
    assert [f.name for f in fields(WorkloadRow)] == _table_columns(con, "stg_workload_hourly")
    assert [f.name for f in fields(PromptTokenRow)] == _table_columns(con, "stg_inference_prompt_hourly")


def test_window_inserts_name_exactly_the_dataclass_columns():
    for block, names in (("insert_energy", ENERGY_COLUMNS), ("insert_inference", INFERENCE_COLUMNS),
                         ("insert_collector_errors", COLLECTOR_ERROR_COLUMNS),
                         ("insert_prompt_tokens", PROMPT_TOKEN_COLUMNS), ("insert_workload", WORKLOAD_COLUMNS)):
        text = sql.load(f"staging/ingest.sql#{block}")
        assert "BY NAME" in text
        assert sql.parameters(text) == {*names, "hour", "source"}
        for name in names:
            assert f"unnest(${name})" in text and f" AS {name}" in text


def test_grid_insert_names_the_intensity_table_columns():
    con = open_store(":memory:")
    assert list(INTENSITY_COLUMNS) == _table_columns(con, "stg_grid_intensity")
    text = sql.load("staging/ingest.sql#insert_intensity")
    assert "BY NAME" in text and sql.parameters(text) == set(INTENSITY_COLUMNS)
    for name in INTENSITY_COLUMNS:
        assert f"unnest(${name})" in text and f" AS {name}" in text
