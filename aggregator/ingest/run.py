"""Ingest: telemetry and grid intensity into DuckDB staging, then facts and rollups.

This module orchestrates a run; ``writer`` writes one telemetry window and
``grid_load`` the grid intensity. Idempotent and resumable by construction:
each page of hours of a source (``--page-hours``) is replaced (delete + insert)
together with its ``ingest_window`` records, its watermark and its months'
dirty marks in ONE transaction, so a crash leaves either the whole page or none of it, and
re-running any range gives the same rows. Facts are rebuilt per dirty month
afterwards (also one transaction each); a crash before that leaves the month
dirty and the next run rebuilds it. Each run re-reads ``lookback_hours`` before the watermark
so samples that arrived late re-process their hours. A source reading recorded series
(``--pre-aggregated``) writes only the hours whose recorded series are complete
(``recorded_guard``): it keeps stored hours it cannot replace and stops before the first new one.
A raw source's re-read goes through the same guard in raw mode: a re-read hour whose rows would
shrink (the store lost data since) keeps its stored rows; new hours are written as read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import duckdb

from wattfleet import sql
from wattfleet.aggregator.config.model import FacilityConfig
from wattfleet.aggregator.ingest import recorded_guard
from wattfleet.aggregator.ingest.batch import TelemetryBatch
from wattfleet.aggregator.ingest.grid_load import GridLoader, load_grid
from wattfleet.aggregator.ingest.telemetry import TelemetrySource
from wattfleet.aggregator.ingest.writer import HOUR, month_of, split_by_hour, write_page, write_window
from wattfleet.aggregator.store.connection import naive_utc
from wattfleet.aggregator.store.dimensions import load_dimensions
from wattfleet.aggregator.store.rebuild import rebuild_dirty
from wattfleet.aggregator.store.rows import one_row
from wattfleet.core.progress import progress as progress_bar

log = logging.getLogger(__name__)

DEFAULT_INITIAL_HOURS = 7 * 24  # first run without --from: the last week
SETTLE = timedelta(minutes=5)  # an hour is complete once its last scrapes have landed
TOTALS = "queries/summary/fleet_totals.sql"

# Re-exported for callers that drive single windows or grid loads (tests, benchmarks).
__all__ = ["IngestRangeError", "IngestResult", "default_range", "floor_hour", "get_watermark", "ingest", "load_grid",
           "month_of", "page_batches", "split_by_hour", "totals", "write_page", "write_window"]


class IngestRangeError(ValueError):
    """The range to ingest ends before it starts: a usage error, said before anything is read or written."""


@dataclass
class IngestResult:
    start: datetime
    end: datetime
    windows: int = 0
    energy_rows: int = 0
    inference_rows: int = 0
    collector_error_rows: int = 0
    intensity_rows: int = 0
    filled_intensity_hours: int = 0
    implausible_intensity_hours: int = 0  # kept and flagged (grid spec implausible: flag), stg_grid_implausible
    months_rebuilt: list[date] = field(default_factory=list)
    grid_notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage: grid, telemetry, facts
    # recorded_guard: re-read hours left as stored, and (--pre-aggregated) the hour the run stopped before
    guard_mode: str = ""  # "raw" or "pre-aggregated" (recorded_guard.mode)
    kept_hours: list[recorded_guard.HourCheck] = field(default_factory=list)
    stopped_before: recorded_guard.HourCheck | None = None
    rule_group_status: str = ""  # the store's rules API on the group, when stopped_before is long overdue


def floor_hour(dt: datetime) -> datetime:
    return dt.replace(minute=0, second=0, microsecond=0)


def get_watermark(con: duckdb.DuckDBPyConnection, source: str) -> datetime | None:
    row = con.execute("SELECT watermark_utc FROM ingest_watermark WHERE source = ?", [source]).fetchone()
    return row[0] if row else None


def default_range(con: duckdb.DuckDBPyConnection, source: str, now: datetime, lookback_hours: int
                  ) -> tuple[datetime, datetime]:
    end = floor_hour(naive_utc(now) - SETTLE)
    wm = get_watermark(con, source)
    start = (wm - lookback_hours * HOUR) if wm else end - DEFAULT_INITIAL_HOURS * HOUR
    return min(start, end), end


def _stamp(dt: datetime) -> str:
    return f"{dt:%Y-%m-%dT%H:%MZ}"


def inverted_range_message(start: datetime, end: datetime, start_given: bool, end_given: bool,
                           watermark: datetime | None, source: str, lookback_hours: int) -> str:
    """Why [start, end) is inverted, naming where each bound came from, so the operator knows which flag
    to pass (a run used to report "ingested 0 hour(s)" with exit 0 and leave the hours out)."""
    if start_given:
        why_start = "--from"
    elif watermark is not None:
        why_start = f"the watermark of source '{source}' {_stamp(watermark)} less --lookback-hours {lookback_hours}"
    else:
        why_start = (f"no watermark for source '{source}' yet, so {DEFAULT_INITIAL_HOURS} hours before the last "
                     "complete hour")
    why_end = "--to" if end_given else "the last complete hour"
    return (f"nothing to ingest: the range starts at {_stamp(start)} ({why_start}), after its end {_stamp(end)} "
            f"({why_end}); pass --from with the first hour to ingest")


def ingest(con: duckdb.DuckDBPyConnection, cfg: FacilityConfig, source: TelemetrySource,
           start: datetime | None = None, end: datetime | None = None, *, lookback_hours: int = 3,
           now: datetime | None = None, grid_loader: GridLoader | None = None, progress: bool = False,
           on_window: Callable[[datetime], None] | None = None) -> IngestResult:
    """Pull [start, end) (whole UTC hours) from ``source`` and rebuild the affected months.

    Without ``start`` a run resumes ``lookback_hours`` before the watermark;
    without ``end`` it stops at the last complete hour. ``on_window(hour)``
    runs after each committed window (progress hooks, fault injection). A range
    that ends before it starts raises :class:`IngestRangeError` before any work.
    """
    now = now or datetime.now(timezone.utc)
    d_start, d_end = default_range(con, source.name, now, lookback_hours)
    start_given, end_given = start is not None, end is not None
    start = floor_hour(naive_utc(start)) if start else d_start
    end = floor_hour(naive_utc(end)) if end else d_end
    if end < start:
        raise IngestRangeError(inverted_range_message(start, end, start_given, end_given,
                                                      get_watermark(con, source.name), source.name, lookback_hours))
    result = IngestResult(start, end)
    load_dimensions(con, cfg)
    if end <= start:
        result.months_rebuilt = rebuild_dirty(con)
        return result
    clock = time.perf_counter()
    result.intensity_rows, result.filled_intensity_hours, result.grid_notes = \
        load_grid(con, cfg, start, end, grid_loader)
    result.implausible_intensity_hours = int(one_row(
        con, "SELECT count(*) FROM stg_grid_implausible WHERE hour_utc >= ? AND hour_utc < ?", [start, end])[0])
    result.seconds["grid"] = time.perf_counter() - clock
    clock = time.perf_counter()
    total_hours = int((end - start) / HOUR)
    bar = progress_bar(total_hours, f"ingest {source.name}", "h", enabled=progress)
    result.guard_mode = recorded_guard.mode(raw=not recorded_guard.applies(source))
    watermark = get_watermark(con, source.name)
    try:
        page = start
        while page < end:
            page_end = min(end, page + source.page_hours * HOUR)
            # recorded_guard: --pre-aggregated, only hours whose recorded series are complete are written;
            # raw, a re-read hour (below the watermark) is not replaced by fewer rows than stored
            guard = recorded_guard.page_guard(con, source, source.name, page, page_end, watermark)
            counts = write_page(con, source.name, page, page_end, page_batches(source, page, page_end), guard)
            result.energy_rows += counts.energy
            result.inference_rows += counts.inference
            result.collector_error_rows += counts.collector_errors
            for first, last in guard.plan.segments if guard is not None else [(page, page_end)]:
                hour = first
                while hour < last:
                    result.windows += 1
                    if on_window is not None:
                        on_window(hour)
                    hour += HOUR
            bar.update(int((page_end - page) / HOUR))
            if guard is not None:
                _note_guard(guard.plan, result, now, source)
                if guard.plan.stop is not None:
                    break
            page = page_end
    finally:
        bar.close()
    result.seconds["telemetry"] = time.perf_counter() - clock
    clock = time.perf_counter()
    from wattfleet.aggregator.inference.fit_step import (  # requests, methods, token fit (issue 3)
        is_embedded,
        run_inference_step,
        supports,
    )
    if supports(source) or is_embedded(source):
        run_inference_step(con, source, start, end)
    result.seconds["inference_fit"] = time.perf_counter() - clock
    clock = time.perf_counter()
    result.months_rebuilt = rebuild_dirty(con)
    result.seconds["facts"] = time.perf_counter() - clock
    log.info("stage wall times: %s", ", ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items()))
    return result


def _note_guard(plan: recorded_guard.PagePlan, result: IngestResult, now: datetime, source: TelemetrySource
                ) -> None:
    """Log and keep (for the run summary) the hours the guard did not write (both modes).

    Stopping before the latest hour is the usual wait for the rule (info);
    an hour still unrecorded ``RECORD_LAG_LIMIT`` after its end is a fault
    (warning), logged with what the store's rules API says of the group.
    """
    for check in plan.kept:
        result.kept_hours.append(check)
        log.warning("%s: kept the stored rows of %s (not replaced; rows read %s, stored %s)", result.guard_mode,
                    check.describe(), _counts(check.read), _counts(check.stored))
    if plan.stop is None:
        return
    result.stopped_before = plan.stop
    if naive_utc(now) - (plan.stop.hour + HOUR) <= recorded_guard.RECORD_LAG_LIMIT:
        log.info("pre-aggregated: stopped before %s; the next run retries it", plan.stop.describe())
        return
    status = getattr(source, "rule_group_status", None)
    result.rule_group_status = status(recorded_guard.GROUP) if status is not None else ""
    log.warning("pre-aggregated: stopped before %s, more than %s after the hour; the watermark stays before it "
                "until it is recorded, backfilled or ingested raw (README, Pre-aggregation); %s",
                plan.stop.describe(), recorded_guard.RECORD_LAG_LIMIT, result.rule_group_status)


def _counts(rows: dict[str, int]) -> str:
    return ", ".join(f"{kind} {rows.get(kind, 0)}" for kind in recorded_guard.KINDS)


def page_batches(source: TelemetrySource, start: datetime, end: datetime) -> Iterator[TelemetryBatch]:
    """The source's rows for [start, end) in batches: its own (bounded) ones, or its whole fetch as one."""
    batches = getattr(source, "batches", None)
    if batches is not None:
        yield from batches(start, end)
    else:
        yield TelemetryBatch.from_telemetry(source.fetch(start, end))


def totals(con: duckdb.DuckDBPyConnection, month: date | None = None) -> dict[str, float]:
    """Fleet totals from the facts (for tests, logs and the CLI summary)."""
    start = datetime(month.year, month.month, 1) if month is not None else None
    # exact sums (sql/macros.sql): bit-identical on every run, whatever the facts' storage order or threads
    row = one_row(con, sql.load(TOTALS), {"month": start})
    names = [d[0] for d in con.description]
    return {name: float(v) for name, v in zip(names, row, strict=True)}
