"""Hourly intensity for a site's planning window: from its grid source, or replayed from history.

Historical files (the EIA-930 2022 files) cannot know 2026, so "history"
mode replays the requested hours from the latest year the source has,
shifted by whole weeks so weekday and hour of day match (the daily and
weekly cycles are what planning exploits); the plan says so. A ``marginal``
sub-spec (e.g. a WattTime region) is preferred for deciding where given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from wattfleet.aggregator.grid.eia930 import read_eia930
from wattfleet.aggregator.grid.electricitymaps import load_electricitymaps_csv
from wattfleet.aggregator.grid.model import IntensityRow
from wattfleet.aggregator.grid.sources import load_intensity
from wattfleet.aggregator.grid.spec import timestamps
from wattfleet.aggregator.grid.timeutil import HOUR, ceil_hour, floor_hour
from wattfleet.aggregator.planning.errors import PlanError

WEEK = timedelta(days=7)
MODES = ("auto", "forecast", "history")
# Keys of a site's grid spec that are for the planner/aggregator, not for the loader.
_PLANNER_KEYS = ("replay_year", "marginal")


@dataclass
class HourlySeries:
    """Intensity for consecutive hours from ``start`` (one value per hour, no gaps)."""

    zone: str
    start: datetime
    grams_per_kwh: list[float]
    signal: str = "average"
    source: str = ""
    filled: list[bool] = field(default_factory=list)
    mode: str = "forecast"  # forecast | history
    replayed_from: datetime | None = None  # first data hour used, in history mode

    @property
    def end(self) -> datetime:
        return self.start + HOUR * len(self.grams_per_kwh)

    @classmethod
    def from_rows(cls, rows: Iterable[IntensityRow], start: datetime, end: datetime, **kw: Any) -> HourlySeries:
        """Series for [start, end) from rows; every hour must be present exactly once per signal."""
        rows = list(rows)
        signals = {r.signal for r in rows}
        signal = "marginal" if "marginal" in signals else "average"
        by_hour = {r.hour_utc: r for r in rows if r.signal == signal}
        values, filled = [], []
        t = start
        zone = rows[0].zone if rows else ""
        while t < end:
            r = by_hour.get(t)
            if r is None:
                raise PlanError(f"zone {zone}: no {signal} intensity for {t.isoformat()}")
            values.append(r.grams_per_kwh)
            filled.append(r.filled)
            t += HOUR
        sources = sorted({r.source for r in by_hour.values() if r.source})
        kw.setdefault("source", ", ".join(sources))
        return cls(zone=kw.pop("zone", zone), start=start, grams_per_kwh=values, signal=signal, filled=filled,
                   **kw)


def history_offset(start: datetime, end: datetime, data_start: datetime, data_end: datetime) -> timedelta:
    """Whole-week shift mapping [start, end) into [data_start, data_end), in the latest year data has.

    The anchor is the same calendar date in the data's last year, moved to the
    nearest date with the same weekday, then moved back (or forward) a week at
    a time until the window fits the data.
    """
    length = end - start
    if length > data_end - data_start:
        raise PlanError(f"the requested window ({length}) is longer than the data available "
                        f"({data_start.isoformat()}..{data_end.isoformat()})")
    ref_year = (data_end - HOUR).year
    try:
        anchor = start.replace(year=ref_year)
    except ValueError:  # 29 February
        anchor = start.replace(year=ref_year, day=28)
    weeks = round((anchor - start) / WEEK)
    offset = weeks * WEEK
    while start + offset + length > data_end:
        offset -= WEEK
    while start + offset < data_start:
        offset += WEEK
    if start + offset + length > data_end:
        raise PlanError(f"cannot place the requested window inside the data "
                        f"({data_start.isoformat()}..{data_end.isoformat()}) on the same weekday and hour")
    return offset


def _loader_spec(grid: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in grid.items() if k not in _PLANNER_KEYS}


def data_range(spec: Mapping[str, Any], base_dir: str | Path | None = None) -> tuple[datetime, datetime] | None:
    """[first, last + 1 h) of a file-based source; None for APIs and tables (ask them for the window)."""
    source = spec.get("source")
    path = spec.get("path")
    if source not in ("eia930", "electricitymaps") or not path:
        return None
    paths = path if isinstance(path, (list, tuple)) else [path]
    first: datetime | None = None
    last: datetime | None = None
    for p in paths:
        p = Path(p)
        if base_dir is not None and not p.is_absolute():
            p = Path(base_dir) / p
        try:
            st = p.stat()
        except OSError as exc:
            raise PlanError(f"{p}: cannot read intensity file: {exc.strerror or exc}") from None
        key = (str(p.resolve()), st.st_mtime_ns, st.st_size, source, timestamps(spec))
        if key not in _RANGE_CACHE:
            if source == "eia930":
                parsed = read_eia930(p, spec.get("zone"), timestamps=timestamps(spec))
                hours = [r.hour_utc for r in parsed.rows] + [e.hour_utc for e in parsed.empty]
            else:
                hours = [r.hour_utc for r in load_electricitymaps_csv(p, spec.get("zone"))]
                if timestamps(spec) == "hour_ending":
                    hours = [h - HOUR for h in hours]
            _RANGE_CACHE[key] = (min(hours), max(hours)) if hours else None
        rng = _RANGE_CACHE[key]
        if rng is None:
            continue
        first = rng[0] if first is None else min(first, rng[0])
        last = rng[1] if last is None else max(last, rng[1])
    if first is None or last is None:
        raise PlanError(f"{', '.join(map(str, paths))}: no hours in the file")
    return first, last + HOUR


# File ranges by (path, mtime, size, source, hour-label convention): a plan over several sites and a serve
# endpoint asked repeatedly should not re-parse the same year of hourly rows to learn its first and last hour.
_RANGE_CACHE: dict[tuple[str, int, int, str, str], tuple[datetime, datetime] | None] = {}


Loader = Callable[[Mapping[str, Any], datetime, datetime], list[IntensityRow]]


def _default_loader(base_dir: str | Path | None, now: datetime | None) -> Loader:
    def load(spec: Mapping[str, Any], start: datetime, end: datetime) -> list[IntensityRow]:
        return load_intensity(spec, start, end, now=now, base_dir=base_dir).rows
    return load


def load_site_series(
    grid: Mapping[str, Any], zone: str, start: datetime, end: datetime, *, mode: str = "auto",
    base_dir: str | Path | None = None, now: datetime | None = None, loader: Loader | None = None,
) -> HourlySeries:
    """Intensity for [start, end) from a site's grid spec, replayed from history when needed.

    A ``marginal`` sub-spec in the grid spec (e.g. a WattTime region) is
    preferred for deciding; otherwise the main source's signal is used.
    """
    if mode not in MODES:
        raise PlanError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    start, end = floor_hour(start), ceil_hour(end)
    load = loader or _default_loader(base_dir, now)
    spec = _loader_spec(grid)
    spec.setdefault("zone", zone)
    if isinstance(grid.get("marginal"), Mapping):
        spec = dict(grid["marginal"])
        spec.setdefault("zone", zone)
    rng = data_range(spec, base_dir) if mode != "forecast" else None
    covered = rng is None or (rng[0] <= start and end <= rng[1])
    if mode == "history" and rng is None:
        raise PlanError(f"zone {zone}: history mode needs a file-based source (eia930 or an Electricity Maps "
                        f"CSV), got {spec.get('source')!r}")
    if mode == "forecast" or (mode == "auto" and covered):
        return HourlySeries.from_rows(load(spec, start, end), start, end, zone=zone, mode="forecast")
    assert rng is not None
    offset = history_offset(start, end, rng[0], rng[1])
    rows = load(spec, start + offset, end + offset)
    shifted = HourlySeries.from_rows(rows, start + offset, end + offset, zone=zone)
    shifted.replayed_from = shifted.start
    shifted.start = start
    shifted.mode = "history"
    return shifted
