"""The re-read guard: an hour is written from recorded series only once complete, and never shrinks.

A recording rule records an hour only when Prometheus evaluates its group
after the hour has ended: normally within the hour after it, later when
evaluation lags, never when it fails. Every run replaces the hours it reads,
so an hour read before it is recorded would replace the energy stored for
it with nothing. A page read from recorded series therefore goes into the
staging tables under a pending source name first (``writer.write_page``),
and this guard compares, per hour, the rows read with the rows stored. An
hour is complete when:

1. the group recorded something for it (any device or workload row);
2. nothing shrinks: per kind (GPU energy, CPU energy, energy by workload)
   at least as many rows were read as are stored for the hour (a group that
   has evaluated records exactly what the raw query gives, so a raw store
   switched over compares equal);
3. no kind vanishes: a kind the hour before has (as read in this page, or as
   stored before it) was read for this hour too (one rule of the group
   failed while the others ran).

An hour that is not complete is not written. Below the watermark (a
lookback re-read, or hours ingested raw before switching to
pre-aggregation) its stored rows are kept and the page goes on; at or past
the watermark the run stops before it, so the watermark never passes it and
the next run tries it again. The store is asked nothing more than the read
itself. README ("Pre-aggregation") states the rule and what to do about an
hour that is never recorded.
Every kept hour is also noted in the store (``ingest_kept_hour``, in the
page's transaction), which ``serve`` publishes for the alert
``WattfleetAggregatorKeptStoredHours``: the batch run's log is not the only
trace.

Raw mode (``raw=True``, counters read with ``increase()``) uses the same
engine for the lookback re-read: a store that lost data since the hour was
stored (a Prometheus restarted without its head/WAL, a partial answer of a
federated store, retention, a shard down) answers with fewer rows. There
only rule 2 applies (rule 3 included: a kind stored and no longer read
shrinks to 0): below the watermark such an hour keeps its stored rows; at
or past it the hour is new and is written as read (raw data for a new hour
is all the store has; a later re-read may only grow it). A re-read that
keeps or grows the counts replaces the hour as before, so late samples
still arrive.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb

from wattfleet import sql

HOUR = timedelta(hours=1)
GUARD_SQL = "staging/recorded_guard.sql"
GROUP = "wattfleet-hourly-energy"  # core.hourly_energy.recording_rule_group's name
# An hour still not recorded this long after its end is a fault (the group runs once an hour), not the usual wait.
RECORD_LAG_LIMIT = timedelta(hours=2)
KINDS = ("gpu", "cpu", "workload")  # stg_energy_hourly.component, and stg_workload_hourly


@dataclass(frozen=True)
class HourCheck:
    """One hour's rows read and stored per kind, and why it may not be written ('' if it may)."""

    hour: datetime
    read: dict[str, int]
    stored: dict[str, int]
    reason: str = ""

    @property
    def complete(self) -> bool:
        return not self.reason

    def describe(self) -> str:
        return f"{self.hour:%Y-%m-%dT%H:%MZ}: {self.reason}"


@dataclass
class PagePlan:
    """What of a page to write: ``segments`` of complete hours; hours ``kept`` as stored; where to ``stop``."""

    segments: list[tuple[datetime, datetime]] = field(default_factory=list)
    kept: list[HourCheck] = field(default_factory=list)
    stop: HourCheck | None = None


def applies(source: object) -> bool:
    """The full guard is for sources reading recorded series (``--pre-aggregated``); others get ``raw``."""
    return bool(getattr(source, "pre_aggregated", False))


def mode(raw: bool) -> str:
    """How the summary and the log name a guard's mode."""
    return "raw" if raw else "pre-aggregated"


def _hours(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = start
    while hour < end:
        yield hour
        hour += HOUR


def reason(read: dict[str, int], before: dict[str, int], stored: dict[str, int], raw: bool = False) -> str:
    """Why an hour with these rows read (and the hour ``before``'s) may not be written; '' if it may.

    ``raw``: only what would shrink the stored rows counts (rule 2)."""
    if not raw and not any(read.values()):
        return f"rule group {GROUP} has recorded nothing for this hour (not evaluated yet, or its evaluation failed)"
    for kind in KINDS:
        if read.get(kind, 0) < stored.get(kind, 0):
            return (f"{kind}: {read.get(kind, 0)} rows {'read' if raw else 'recorded'}, {stored[kind]} stored "
                    "(stored energy would be lost)")
        if not raw and before.get(kind, 0) and not read.get(kind, 0):
            return f"{kind}: none recorded, though the hour before has some (that rule lags or failed)"
    return ""


def check_hours(read: dict[datetime, dict[str, int]], stored: dict[datetime, dict[str, int]],
                start: datetime, end: datetime, raw: bool = False) -> list[HourCheck]:
    """Each hour of [start, end) checked; ``stored`` also holds the hour before ``start``."""
    out = []
    for hour in _hours(start, end):
        before = (read if hour > start else stored).get(hour - HOUR, {})
        here, st = read.get(hour, {}), stored.get(hour, {})
        out.append(HourCheck(hour, here, st, reason(here, before, st, raw)))
    return out


def plan(checks: list[HourCheck], watermark: datetime | None, raw: bool = False) -> PagePlan:
    """Runs of complete hours to write; incomplete ones below ``watermark`` kept; stop at the first other one.

    ``raw``: there is no stop; an hour at or past ``watermark`` is written as read, whatever its check."""
    out = PagePlan()
    first: datetime | None = None
    for check in checks:
        below = watermark is not None and check.hour < watermark
        if check.complete or (raw and not below):
            first = check.hour if first is None else first
            continue
        if first is not None:
            out.segments.append((first, check.hour))
            first = None
        if below:
            out.kept.append(check)
            continue
        out.stop = check
        return out
    if first is not None:
        out.segments.append((first, checks[-1].hour + HOUR))
    return out


def stored_rows(con: duckdb.DuckDBPyConnection, source: str, start: datetime, end: datetime
                ) -> dict[datetime, dict[str, int]]:
    """Rows per hour of [start, end) and kind of one source name (``sql/staging/recorded_guard.sql``)."""
    out: dict[datetime, dict[str, int]] = defaultdict(dict)
    params = {"source": source, "start": start, "end": end}
    for hour, kind, rows in con.execute(sql.load(f"{GUARD_SQL}#stored_rows"), params).fetchall():
        out[hour][kind] = int(rows)
    return dict(out)


class PageGuard:
    """The guard of one page for ``writer.write_page``: called with the pending source, keeps its plan."""

    def __init__(self, con: duckdb.DuckDBPyConnection, source: str, start: datetime, end: datetime,
                 watermark: datetime | None, raw: bool = False) -> None:
        self.con, self.source, self.start, self.end, self.watermark = con, source, start, end, watermark
        self.raw = raw
        self.plan = PagePlan()

    def __call__(self, pending: str) -> list[tuple[datetime, datetime]]:
        read = stored_rows(self.con, pending, self.start, self.end)
        stored = stored_rows(self.con, self.source, self.start - HOUR, self.end)
        self.plan = plan(check_hours(read, stored, self.start, self.end, self.raw), self.watermark, self.raw)
        record_kept(self.con, self.source, self.plan.kept, mode(self.raw))
        return self.plan.segments


def record_kept(con: duckdb.DuckDBPyConnection, source: str, kept: list[HourCheck], guard_mode: str) -> None:
    """Note each kept hour in ``ingest_kept_hour`` (migration 016) so ``serve`` can publish it after the run.

    Called inside the page's transaction: the note commits with the page or not at all."""
    for check in kept:
        con.execute(sql.load(f"{GUARD_SQL}#record_kept"), {
            "source": source, "hour": check.hour, "mode": guard_mode, "reason": check.reason,
            **{f"read_{kind}": check.read.get(kind, 0) for kind in KINDS},
            **{f"stored_{kind}": check.stored.get(kind, 0) for kind in KINDS}})


def page_guard(con: duckdb.DuckDBPyConnection, source: object, name: str, start: datetime, end: datetime,
               watermark: datetime | None) -> PageGuard | None:
    """The guard of one page of ``source``, or None where there is nothing to guard.

    Recorded series: always. Raw: only a page starting below the watermark
    (a re-read); pages of new hours, a first run's backfill included, are
    written directly without the pending copy.
    """
    if applies(source):
        return PageGuard(con, name, start, end, watermark)
    if watermark is not None and start < watermark:
        return PageGuard(con, name, start, end, watermark, raw=True)
    return None
