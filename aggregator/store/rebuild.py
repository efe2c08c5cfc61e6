"""Rebuild a month's facts and rollups from staging (``sql/facts/``, ``sql/rollups/``).

The month's bounds are passed to the SQL as DuckDB variables
(``getvariable('month_start')``, ``getvariable('month_end')``), so each SQL
step reads on its own and nothing is staged from Python first.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb

from wattfleet import sql
from wattfleet.aggregator.config.dates import month_end
from wattfleet.aggregator.store.errors import StoreError
from wattfleet.aggregator.store.transactions import transaction

FACTS_FOLDER = "facts/"
ROLLUPS = "rollups/month.sql"


def fact_steps() -> list[str]:
    """The files of ``sql/facts/``, in the order they run (their names start with the step number)."""
    return sorted(p for p in sql.files() if p.startswith(FACTS_FOLDER))


def set_month(con: duckdb.DuckDBPyConnection, month: date) -> None:
    """Set the month bounds every facts and rollups statement reads: [month_start, month_end)."""
    end = month_end(date(month.year, month.month, 1))
    con.execute("SET VARIABLE month_start = $t::TIMESTAMP", {"t": datetime(month.year, month.month, 1)})
    con.execute("SET VARIABLE month_end = $t::TIMESTAMP", {"t": datetime(end.year, end.month, 1)})


def _build_facts(con: duckdb.DuckDBPyConnection, month: date) -> None:
    # Every sum in the facts is exact (``exact_sum`` in sql/macros.sql), so they run on every thread
    # and a rebuild is still bit-identical whatever order the threads add rows in.
    for step in fact_steps():
        try:
            con.execute(sql.load(step))
        except (duckdb.ConversionException, duckdb.OutOfRangeException) as exc:
            raise StoreError(f"sql/{step}: a sum of {month:%Y-%m} is beyond the exact range of the facts "
                             f"(1e26 kWh, g, L or J): {exc}") from exc


def _build_rollups(con: duckdb.DuckDBPyConnection, month: date) -> None:
    # Fixed-point integer sums are exact in any order, so the rollups run on every thread too.
    try:
        con.execute(sql.load(ROLLUPS))
    except duckdb.ConversionException as exc:
        raise StoreError(f"sql/{ROLLUPS}: a fact of {month:%Y-%m} is beyond the fixed-point range of the "
                         f"rollups (at most 9.2e6 kWh, 9.2e9 g or 9.2e9 L in one row): {exc}") from exc


def rebuild_month(con: duckdb.DuckDBPyConnection, month: date) -> None:
    """Rebuild facts and rollups of ``month`` from staging in one transaction; clears its dirty mark."""
    with transaction(con):
        set_month(con, month)
        _build_facts(con, month)
        _build_rollups(con, month)
        con.execute("DELETE FROM dirty_month WHERE month = ?", [date(month.year, month.month, 1)])


def rebuild_rollups(con: duckdb.DuckDBPyConnection, month: date) -> None:
    """Rebuild only the rollups of ``month`` from its facts (one transaction), as rebuild_month does."""
    with transaction(con):
        set_month(con, month)
        _build_rollups(con, month)


def rebuild_dirty(con: duckdb.DuckDBPyConnection) -> list[date]:
    """Rebuild every month whose staging changed since its facts were built."""
    months = [r[0] for r in con.execute("SELECT month FROM dirty_month ORDER BY month").fetchall()]
    for m in months:
        rebuild_month(con, m)
    return months
