"""Write one telemetry window (source, hour) into staging, with its bookkeeping, atomically.

A window is replaced (delete + insert) together with its ``ingest_window``
record, its watermark and its month's dirty mark in ONE transaction, so a
crash leaves either the whole window or none of it. ``write_page`` does the
same for a page of hours whose rows arrive in batches (a store's answers,
one series shard at a time): the page is the unit, so a fleet of any size
is written without ever holding a whole hour of it. The statements are the
blocks of ``sql/staging/ingest.sql``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from wattfleet import sql
from wattfleet.aggregator.ingest.batch import Columns, TelemetryBatch, epoch_seconds
from wattfleet.aggregator.ingest.telemetry import (
    CollectorErrorRow,
    EnergyRow,
    InferenceRow,
    PromptTokenRow,
    Telemetry,
    WorkloadRow,
)
from wattfleet.aggregator.store.transactions import single_threaded, transaction

HOUR = timedelta(hours=1)
INGEST_SQL = "staging/ingest.sql"

# The per-row columns of a window's insert: the row dataclasses' fields less the window's own
# (hour_utc, source), which the statement takes once. tests/sql/test_staging.py pins them to the tables.
_WINDOW_FIELDS = ("hour_utc", "source")
ENERGY_COLUMNS = tuple(f.name for f in fields(EnergyRow) if f.name not in _WINDOW_FIELDS)
INFERENCE_COLUMNS = tuple(f.name for f in fields(InferenceRow) if f.name not in _WINDOW_FIELDS)
COLLECTOR_ERROR_COLUMNS = tuple(f.name for f in fields(CollectorErrorRow) if f.name not in _WINDOW_FIELDS)
PROMPT_TOKEN_COLUMNS = tuple(f.name for f in fields(PromptTokenRow) if f.name not in _WINDOW_FIELDS)
WORKLOAD_COLUMNS = tuple(f.name for f in fields(WorkloadRow) if f.name not in _WINDOW_FIELDS)


def month_of(dt: datetime) -> date:
    return date(dt.year, dt.month, 1)


def statement(block: str) -> str:
    """One statement of ``sql/staging/ingest.sql`` (cached)."""
    return sql.load(f"{INGEST_SQL}#{block}")


def mark_dirty(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> None:
    """Mark every month touching [start, end) for a rebuild at the end of the run."""
    m = month_of(start)
    while datetime(m.year, m.month, 1) < end:
        con.execute(statement("mark_dirty"), {"month": m})
        m = date(m.year + (m.month == 12), m.month % 12 + 1, 1)


def split_by_hour(telemetry: Telemetry) -> dict[datetime, Telemetry]:
    """Each hour's rows of a page, in one pass: a window never re-scans the whole page."""
    out: dict[datetime, Telemetry] = {}
    for r in telemetry.energy:
        out.setdefault(r.hour_utc, Telemetry([r.hour_utc], [], [])).energy.append(r)
    for i in telemetry.inference:
        out.setdefault(i.hour_utc, Telemetry([i.hour_utc], [], [])).inference.append(i)
    for c in telemetry.collector_errors:
        out.setdefault(c.hour_utc, Telemetry([c.hour_utc], [], [])).collector_errors.append(c)
    for p in telemetry.prompt_tokens:
        out.setdefault(p.hour_utc, Telemetry([p.hour_utc], [], [])).prompt_tokens.append(p)
    for w in telemetry.workload:
        out.setdefault(w.hour_utc, Telemetry([w.hour_utc], [], [])).workload.append(w)
    return out


def columns(rows: list[Any], names: tuple[str, ...]) -> dict[str, list[Any]]:
    """Rows as parallel lists, one per column: the parameters of a set-based ``unnest`` insert."""
    return {name: [getattr(r, name) for r in rows] for name in names}


def write_window(con: duckdb.DuckDBPyConnection, source: str, hour: datetime, telemetry: Telemetry) -> int:
    """Replace one hour of one source, its bookkeeping and watermark, atomically.

    ``telemetry`` may hold other hours too (only ``hour``'s rows are written);
    pass one hour's rows (:func:`split_by_hour`) to avoid scanning a page per hour.
    Rows go in with one set-based statement per table (``sql/staging/ingest.sql``).
    """
    energy = [r for r in telemetry.energy if r.hour_utc == hour]
    inference = [r for r in telemetry.inference if r.hour_utc == hour]
    errors = [r for r in telemetry.collector_errors if r.hour_utc == hour]
    prompt = [r for r in telemetry.prompt_tokens if r.hour_utc == hour]
    workload = [r for r in telemetry.workload if r.hour_utc == hour]
    window = {"source": source, "hour": hour}
    with transaction(con):
        con.execute(statement("delete_energy"), window)
        con.execute(statement("delete_inference"), window)
        con.execute(statement("delete_collector_errors"), window)
        con.execute(statement("delete_prompt_tokens"), window)
        con.execute(statement("delete_workload"), window)
        if energy:
            con.execute(statement("insert_energy"), {**window, **columns(energy, ENERGY_COLUMNS)})
        if inference:
            con.execute(statement("insert_inference"), {**window, **columns(inference, INFERENCE_COLUMNS)})
        if errors:
            con.execute(statement("insert_collector_errors"), {**window, **columns(errors, COLLECTOR_ERROR_COLUMNS)})
        if prompt:
            con.execute(statement("insert_prompt_tokens"), {**window, **columns(prompt, PROMPT_TOKEN_COLUMNS)})
        if workload:
            con.execute(statement("insert_workload"), {**window, **columns(workload, WORKLOAD_COLUMNS)})
        con.execute(statement("record_window"), {**window, "rows": len(energy) + len(inference)})
        con.execute(statement("advance_watermark"), {"source": source, "watermark": hour + HOUR})
        con.execute(statement("mark_dirty"), {"month": month_of(hour)})
    return len(energy) + len(inference)


@dataclass
class PageCounts:
    """Rows written for a page, per table and per hour (hour start as Unix seconds)."""

    energy: int = 0
    inference: int = 0
    collector_errors: int = 0
    prompt_tokens: int = 0
    workload: int = 0
    per_hour: Counter[int] = field(default_factory=Counter)  # energy + inference rows (ingest_window.rows)
    table_per_hour: dict[str, Counter[int]] = field(default_factory=dict)


# (TelemetryBatch attribute, registered view, insert block, delete block) per staging table
_BATCH_TABLES = (("energy", "energy_batch", "insert_energy_batch", "delete_energy_page"),
                 ("inference", "inference_batch", "insert_inference_batch", "delete_inference_page"),
                 ("collector_errors", "collector_errors_batch", "insert_collector_errors_batch",
                  "delete_collector_errors_page"),
                 ("prompt_tokens", "prompt_tokens_batch", "insert_prompt_tokens_batch", "delete_prompt_tokens_page"),
                 ("workload", "workload_batch", "insert_workload_batch", "delete_workload_page"))


def insert_columns(con: duckdb.DuckDBPyConnection, view: str, block: str, source: str, cols: Columns) -> None:
    """One batch into its staging table: its points registered as ``view`` and its series as
    ``view``_series (NumPy arrays, :meth:`Columns.point_arrays`), one INSERT ... BY NAME joining them."""
    points, series = cols.point_arrays()
    con.register(view, points)
    con.register(f"{view}_series", series)
    try:
        con.execute(statement(block), {"source": source})
    finally:
        con.unregister(view)
        con.unregister(f"{view}_series")


# The guard of a page (recorded_guard.PageGuard: recorded series, or a raw re-read): given the
# pending source name its rows went in under, the runs [first, last) of hours to write.
PageGuard = Callable[[str], list[tuple[datetime, datetime]]]
_PROMOTE = {"energy": "promote_energy", "inference": "promote_inference",
            "collector_errors": "promote_collector_errors", "prompt_tokens": "promote_prompt_tokens",
            "workload": "promote_workload"}
GUARD_SQL = "staging/recorded_guard.sql"


def pending_source(source: str) -> str:
    """The source name a guarded page's rows carry until the guard has seen them (never committed)."""
    return f"{source}:pending"


def write_page(con: duckdb.DuckDBPyConnection, source: str, start: datetime, end: datetime,
               batches: Iterable[TelemetryBatch], guard: PageGuard | None = None) -> PageCounts:
    """Replace the hours [start, end) of ``source`` with the rows of ``batches``, atomically.

    ``batches`` is consumed inside the transaction, one at a time (a store's
    answers as they are fetched): a failure anywhere, fetch included, rolls
    the whole page back, and no more than one batch is held at once. Rows
    outside [start, end) are refused (a store answering for other hours).

    With ``guard`` the rows go in under :func:`pending_source` first; the
    guard sees them beside the stored ones and names the runs of hours to
    write. Only those hours replace their stored rows, count, get their
    window record and move the watermark (to the end of the last run); the
    other hours stay exactly as stored and the pending rows are dropped,
    all in the same transaction.
    """
    counts = PageCounts()
    lo, hi = epoch_seconds(start), epoch_seconds(end)
    target = pending_source(source) if guard is not None else source
    page = {"source": source, "start": start, "end": end}
    counts.table_per_hour = {attr: Counter() for attr, *_ in _BATCH_TABLES}
    # One DuckDB thread: appending batches of a few tens of thousands of rows gains nothing from more and
    # pays for their coordination (the 10,000-GPU week's pull: 5.8 -> 4.9 CPU s, wall no longer).
    # Insertion order is the batches' order either way.
    with single_threaded(con), transaction(con):
        if guard is None:
            for *_, delete in _BATCH_TABLES:
                con.execute(statement(delete), page)
        for batch in batches:
            for attr, view, block, _ in _BATCH_TABLES:
                cols: Columns = getattr(batch, attr)
                if not len(cols):
                    continue
                per_hour = cols.rows_per_hour()
                if min(per_hour) < lo or max(per_hour) >= hi:
                    raise ValueError(f"{source}: rows outside the page {start}..{end}")
                insert_columns(con, view, block, target, cols)
                counts.table_per_hour[attr].update(per_hour)
        runs = [(start, end)] if guard is None else guard(target)
        if guard is not None:
            for first, last in runs:
                run = {"source": source, "start": first, "end": last}
                for attr, *_, delete in _BATCH_TABLES:
                    con.execute(statement(delete), run)
                    con.execute(sql.load(f"{GUARD_SQL}#{_PROMOTE[attr]}"), {**run, "pending": target})
            for *_, delete in _BATCH_TABLES:
                con.execute(statement(delete), {**page, "source": target})
        for first, last in runs:
            hours: list[datetime] = []
            rows_per_hour: list[int] = []
            hour = first
            while hour < last:
                h = epoch_seconds(hour)
                for attr, *_ in _BATCH_TABLES:
                    setattr(counts, attr, getattr(counts, attr) + counts.table_per_hour[attr][h])
                rows = counts.table_per_hour["energy"][h] + counts.table_per_hour["inference"][h]
                counts.per_hour[h] = rows
                hours.append(hour)
                rows_per_hour.append(rows)
                hour += HOUR
            if hours:  # one statement for the run's hours, not one per hour
                con.execute(statement("record_windows"), {"source": source, "hours": hours, "rows": rows_per_hour})
            mark_dirty(con, first, last)
        if runs:
            con.execute(statement("advance_watermark"), {"source": source, "watermark": runs[-1][1]})
    return counts
