"""Pre-aggregation's guard: an hour is written from recorded series only once they are complete.

A recording rule records an hour only when Prometheus evaluates its group
after the hour has ended: normally within the hour after it, later when
evaluation lags, never when it fails. Every run replaces the hours it reads
(``writer.write_page``), so an hour read before it is recorded would replace
the energy stored for it with nothing. Before each page is written the
recorded series are counted per hour in the store, fleet-wide (one small
query, ``PrometheusSource.recorded_counts``), and an hour is complete when:

1. the group recorded something for it (any of its series);
2. nothing shrinks: per kind (GPU energy, CPU energy, energy by workload)
   at least as many series are recorded as rows are stored for the hour from
   this source (the sinks store at most one row per series, and a group that
   has evaluated records exactly what the raw query gives);
3. no kind vanishes: a kind recorded for the hour before is recorded for
   this hour too (one rule of the group failed while the others ran).

An hour that is not complete is not written. Below the watermark (a
lookback re-read, or hours ingested raw before switching to pre-aggregation)
its stored rows are kept and the run goes on with the next hours; at or
past the watermark the run stops before it, so the watermark never passes
it and the next run tries it again. docs/scale.md and README
("Pre-aggregation") state the rule and what to do about an hour that is
never recorded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import duckdb

from wattfleet import sql
from wattfleet.core import catalog

HOUR = timedelta(hours=1)
GUARD_SQL = "staging/recorded_guard.sql"
GROUP = "wattfleet-hourly-energy"  # core.hourly_energy.recording_rule_group's name
# An hour still not recorded this long after its end is a fault (the group runs once an hour), not the usual wait.
RECORD_LAG_LIMIT = timedelta(hours=2)

# Recorded series (by the catalog metric they stand for) -> the kind of stored row they give.
KINDS = {catalog.GPU_ENERGY.name: "gpu", catalog.CPU_ENERGY.name: "cpu", catalog.WORKLOAD_ENERGY.name: "workload"}


class RecordedSource(Protocol):
    name: str

    def recorded_counts(self, start: datetime, end: datetime) -> dict[datetime, dict[str, int]]:
        """Recorded series per hour in [start, end) and per catalog metric name."""
        ...

    def rule_group_status(self, group: str) -> str:
        """What the store says of the rule group (a diagnostic for the log)."""
        ...


@dataclass(frozen=True)
class HourCheck:
    """One hour's recorded series and stored rows per kind, and why it may not be written ('' if it may)."""

    hour: datetime
    recorded: dict[str, int]
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
    """The guard is for sources reading recorded series (``--pre-aggregated``)."""
    return bool(getattr(source, "pre_aggregated", False)) and hasattr(source, "recorded_counts")


def _hours(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = start
    while hour < end:
        yield hour
        hour += HOUR


def reason(recorded: dict[str, int], before: dict[str, int], stored: dict[str, int]) -> str:
    """Why an hour with these recorded series (and the hour ``before``'s) may not be written; '' if it may."""
    if not any(recorded.values()):
        return f"rule group {GROUP} has recorded nothing for this hour (not evaluated yet, or its evaluation failed)"
    for kind in KINDS.values():
        if recorded.get(kind, 0) < stored.get(kind, 0):
            return (f"{kind}: {recorded.get(kind, 0)} series recorded, {stored[kind]} rows stored "
                    "(stored energy would be lost)")
        if before.get(kind, 0) and not recorded.get(kind, 0):
            return f"{kind}: recorded for the hour before, not for this one (that rule lags or failed)"
    return ""


def check_hours(recorded: dict[datetime, dict[str, int]], stored: dict[datetime, dict[str, int]],
                start: datetime, end: datetime) -> list[HourCheck]:
    """Each hour of [start, end) checked; ``recorded`` (by catalog name) also holds the hour before ``start``."""
    def by_kind(hour: datetime) -> dict[str, int]:
        counts = recorded.get(hour, {})
        return {kind: counts.get(name, 0) for name, kind in KINDS.items()}

    out = []
    for hour in _hours(start, end):
        rec, st = by_kind(hour), stored.get(hour, {})
        out.append(HourCheck(hour, rec, st, reason(rec, by_kind(hour - HOUR), st)))
    return out


def plan(checks: list[HourCheck], watermark: datetime | None) -> PagePlan:
    """Runs of complete hours to write; incomplete ones below ``watermark`` kept; stop at the first other one."""
    out = PagePlan()
    first: datetime | None = None
    for check in checks:
        if check.complete:
            first = check.hour if first is None else first
            continue
        if first is not None:
            out.segments.append((first, check.hour))
            first = None
        if watermark is not None and check.hour < watermark:
            out.kept.append(check)
            continue
        out.stop = check
        return out
    if first is not None:
        out.segments.append((first, checks[-1].hour + HOUR))
    return out


def stored_rows(con: duckdb.DuckDBPyConnection, source: str, start: datetime, end: datetime
                ) -> dict[datetime, dict[str, int]]:
    """Rows stored per hour of [start, end) and kind (``sql/staging/recorded_guard.sql``)."""
    out: dict[datetime, dict[str, int]] = defaultdict(dict)
    params = {"source": source, "start": start, "end": end}
    for hour, kind, rows in con.execute(sql.load(f"{GUARD_SQL}#stored_rows"), params).fetchall():
        out[hour][kind] = int(rows)
    return dict(out)


def plan_page(con: duckdb.DuckDBPyConnection, source: RecordedSource, start: datetime, end: datetime,
              watermark: datetime | None) -> PagePlan:
    """The page [start, end) checked against the store's recorded series and the rows stored."""
    recorded = source.recorded_counts(start - HOUR, end)
    return plan(check_hours(recorded, stored_rows(con, source.name, start, end), start, end), watermark)
