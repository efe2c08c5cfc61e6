"""wattfleet.sql's loader: files, named blocks, statements and the parameters each statement takes."""

from __future__ import annotations

import duckdb
import pytest

from wattfleet import sql
from wattfleet.aggregator.store.rows import one_row


def test_load_reads_a_file_or_one_named_block():
    assert sql.load("macros.sql") == sql.file_text("macros.sql")
    insert = sql.load("staging/ingest.sql#insert_energy")
    assert insert.lstrip().startswith("--") and "INSERT INTO stg_energy_hourly BY NAME" in insert
    assert not insert.rstrip().endswith(";")
    with pytest.raises(KeyError, match="no block"):
        sql.load("staging/ingest.sql#nope")


def test_statements_split_at_line_ending_semicolons_and_skip_comment_only_chunks():
    clear = sql.statements("staging/dimensions.sql#clear")
    assert len(clear) == 10 and all(s.startswith("DELETE FROM dim_") for s in clear)
    assert len(sql.statements("facts/020_energy.sql")) == 2


def test_run_passes_each_statement_only_the_parameters_it_names():
    con = duckdb.connect()
    con.execute("CREATE TABLE dirty_month (month DATE PRIMARY KEY)")
    sql.run(con, "staging/ingest.sql#mark_dirty", {"month": "2026-01-01", "unused": 1})
    assert one_row(con, "SELECT count(*) FROM dirty_month")[0] == 1
    assert sql.parameters("SELECT $a, $b_c FROM t WHERE x = $a") == {"a", "b_c"}


def test_every_shipped_file_is_listed():
    files = sql.files()
    assert "schema/001_initial.sql" in files and "macros.sql" in files and "rollups/month.sql" in files
    assert all(f.endswith(".sql") for f in files)
