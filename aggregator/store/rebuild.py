"""Rebuild a month's facts and rollups from staging (``sql/facts/``, ``sql/rollups/``).

The month's bounds are passed to the SQL as DuckDB variables
(``getvariable('month_start')``, ``getvariable('month_end')``), so each SQL
step reads on its own and nothing is staged from Python first.
"""

from __future__ import annotations

import re
from datetime import date, datetime

import duckdb

from wattfleet import sql
from wattfleet.aggregator.config.dates import month_end
from wattfleet.aggregator.store.errors import StoreError
from wattfleet.aggregator.store.transactions import transaction

FACTS_FOLDER = "facts/"
SLICE_FOLDER = "facts/slice/"
_STEP_RE = re.compile(r"\d{3}_\w+\.sql")
ROLLUPS = "rollups/month.sql"

# At most this many energy rows (device-hours plus node overhead lines) go through one run of the slice
# steps. The device facts' joins and groupings are linear in rows while their hash tables fit DuckDB's
# memory limit and several times slower once they spill: a 100,000-GPU week (38 M rows) built in one
# statement took 4.7x as long per row as a 10,000-GPU week (3.8 M rows) under the 1 GB default
# (docs/scale.md). Per GB of memory limit, so a larger limit takes larger slices.
SLICE_ROWS_PER_GB = 4_000_000


def _steps(folder: str) -> list[str]:
    # A step is a file named for its number (``040_device_hour.sql``); other files hold helper queries.
    return sorted(p for p in sql.files()
                  if p.startswith(folder) and _STEP_RE.fullmatch(p[len(folder):]) is not None)


def month_steps() -> list[str]:
    """The steps directly in ``sql/facts/``: run once per month, in the order of their numbers."""
    return _steps(FACTS_FOLDER)


def slice_steps() -> list[str]:
    """The steps of ``sql/facts/slice/``: run once per slice of the month's hours, after the month steps."""
    return _steps(SLICE_FOLDER)


def fact_steps() -> list[str]:
    """Every facts step in the order a rebuild first runs them: the month steps, then the slice steps."""
    return month_steps() + slice_steps()


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """[start, end) of ``month`` as naive UTC timestamps."""
    end = month_end(date(month.year, month.month, 1))
    return datetime(month.year, month.month, 1), datetime(end.year, end.month, 1)


def set_month(con: duckdb.DuckDBPyConnection, month: date) -> None:
    """Set the month bounds every facts and rollups statement reads: [month_start, month_end)."""
    start, end = month_bounds(month)
    con.execute("SET VARIABLE month_start = $t::TIMESTAMP", {"t": start})
    con.execute("SET VARIABLE month_end = $t::TIMESTAMP", {"t": end})


def slice_rows(con: duckdb.DuckDBPyConnection) -> int:
    """Energy rows per slice for this connection's memory limit (SLICE_ROWS_PER_GB, at least one hour's rows)."""
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()
    gib = _gib(str(limit[0])) if limit else 1.0
    return max(1, int(SLICE_ROWS_PER_GB * gib))


def _gib(setting: str) -> float:
    # DuckDB reports the limit as e.g. '953.6 MiB' or '3.7 GiB'.
    number, _, unit = setting.strip().partition(" ")
    scale = {"KiB": 2**-20, "MiB": 2**-10, "GiB": 1.0, "TiB": 2**10, "KB": 1e3 / 2**30, "MB": 1e6 / 2**30,
             "GB": 1e9 / 2**30, "TB": 1e12 / 2**30}.get(unit.strip())
    try:
        return float(number) * scale if scale is not None else 1.0
    except ValueError:
        return 1.0


def hour_slices(con: duckdb.DuckDBPyConnection, month: date, max_rows: int) -> list[tuple[datetime, datetime]]:
    """Consecutive [start, end) spans covering ``month``, each of whole hours and at most ``max_rows``
    energy rows (an hour with more rows than that is a slice of its own); reads step 020's ``_energy``."""
    start, end = month_bounds(month)
    spans: list[tuple[datetime, datetime]] = []
    rows = 0
    for hour, count in con.execute("SELECT hour_utc, count(*) FROM _energy GROUP BY ALL ORDER BY ALL").fetchall():
        if rows and rows + count > max_rows:
            spans.append((start, hour))
            start, rows = hour, 0
        rows += count
    spans.append((start, end))
    return spans


def _run_step(con: duckdb.DuckDBPyConnection, step: str, month: date) -> None:
    try:
        con.execute(sql.load(step))
    except (duckdb.ConversionException, duckdb.OutOfRangeException) as exc:
        raise StoreError(f"sql/{step}: a sum of {month:%Y-%m} is beyond the exact range of the facts "
                         f"(1e26 kWh, g, L or J): {exc}") from exc


def _build_facts(con: duckdb.DuckDBPyConnection, month: date, max_rows: int | None = None) -> None:
    # Every sum in the facts is exact (``exact_sum`` in sql/macros.sql), so they run on every thread
    # and a rebuild is still bit-identical whatever order the threads add rows in, and however the
    # month's hours are sliced.
    for step in month_steps():
        _run_step(con, step, month)
    for start, end in hour_slices(con, month, max_rows or slice_rows(con)):
        con.execute("SET VARIABLE slice_start = $t::TIMESTAMP", {"t": start})
        con.execute("SET VARIABLE slice_end = $t::TIMESTAMP", {"t": end})
        for step in slice_steps():
            _run_step(con, step, month)


def _build_rollups(con: duckdb.DuckDBPyConnection, month: date) -> None:
    # Fixed-point integer sums are exact in any order, so the rollups run on every thread too.
    try:
        con.execute(sql.load(ROLLUPS))
    except duckdb.ConversionException as exc:
        raise StoreError(f"sql/{ROLLUPS}: a fact of {month:%Y-%m} is beyond the fixed-point range of the "
                         f"rollups (at most 9.2e6 kWh, 9.2e9 g or 9.2e9 L in one row): {exc}") from exc


def rebuild_month(con: duckdb.DuckDBPyConnection, month: date, slice_max_rows: int | None = None) -> None:
    """Rebuild facts and rollups of ``month`` from staging in one transaction; clears its dirty mark.

    ``slice_max_rows`` overrides the energy rows per slice of the device facts (tests; default
    ``slice_rows``)."""
    with transaction(con):
        set_month(con, month)
        _build_facts(con, month, slice_max_rows)
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
