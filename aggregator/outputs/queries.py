"""The report's SQL tables: each ``-- name:`` block of ``sql/queries/report/*.sql``, run once.

Each query runs once into a temp table ``report_<name>`` (a later block may
read an earlier one); the Markdown/HTML tables, the CSV and the Parquet file
all read that one result. The files carry ``period_start`` and ``period_end``
for analysts; the documents and charts get the same rows without them (the
report's month is in its title).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from wattfleet import sql
from wattfleet.aggregator.outputs.tables import copy_table
from wattfleet.aggregator.store.rows import one_row

REPORT_FILES = ("queries/report/inventory.sql", "queries/report/tables.sql", "queries/report/data_quality.sql")
PERIOD_COLUMNS = ("period_start", "period_end")

# name -> (column names, rows): what the documents and charts are drawn from.
Tables = dict[str, tuple[list[str], list[tuple[Any, ...]]]]


def report_queries() -> dict[str, str]:
    """``-- name: X`` blocks of the report's SQL files, in the order they run."""
    out: dict[str, str] = {}
    for path in REPORT_FILES:
        out.update(sql.blocks(path))
    return out


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of ``YYYY-MM``, naive UTC."""
    y, m = (int(x) for x in month.split("-"))
    return datetime(y, m, 1), datetime(y + (m == 12), m % 12 + 1, 1)


def month_fact_rows(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> int:
    """How many device-hour facts the month has (none: nothing to report)."""
    return int(one_row(con, "SELECT count(*) FROM fact_device_hour WHERE hour_utc >= ? AND hour_utc < ?",
                       [start, end])[0])


def run_report_queries(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, out: Path
                       ) -> tuple[Tables, list[Path]]:
    """Every report table of [start, end): its rows, and its CSV and Parquet files in ``out``."""
    params = {"month_start": start, "month_end": end}
    tables: Tables = {}
    written: list[Path] = []
    for name, query in report_queries().items():
        used = {k: v for k, v in params.items() if k in sql.parameters(query)}
        table = f"report_{name}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS ({query})", used)
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        shown = ", ".join(f'"{c}"' for c in cols if c not in PERIOD_COLUMNS)
        rel = con.execute(f"SELECT {shown} FROM {table}")
        tables[name] = ([d[0] for d in rel.description], rel.fetchall())
        written += copy_table(con, table, out, name)
    return tables, written
