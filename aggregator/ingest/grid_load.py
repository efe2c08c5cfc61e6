"""Hourly grid intensity of every configured zone into staging, replacing the loaded range.

A grid load replaces the zone's hours in [start, end) exactly, in one
transaction with the dirty marks of the months it touches, so rows the
source no longer has go too (``sql/staging/ingest.sql``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

from wattfleet.aggregator.config.model import FacilityConfig
from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.grid.timeutil import hours
from wattfleet.aggregator.ingest.writer import HOUR, mark_dirty, statement
from wattfleet.aggregator.store.connection import naive_utc
from wattfleet.aggregator.store.transactions import transaction

GridLoader = Callable[..., Any]

# One grid row as stored: the parallel-list parameters of the set-based insert (staging/ingest.sql).
INTENSITY_COLUMNS = ("zone", "hour_utc", "signal", "grams_per_kwh", "cfe_ratio", "source", "filled", "fill_rule")


def _default_grid_loader() -> GridLoader:
    from wattfleet.aggregator.grid.sources import load_intensity  # grid package: loaders and gap filling
    return load_intensity


def _replace_year(dt: datetime, year: int) -> datetime | None:
    try:
        return dt.replace(year=year)
    except ValueError:  # 29 February in a non-leap year
        return None


def load_grid(con: duckdb.DuckDBPyConnection, cfg: FacilityConfig, start: datetime, end: datetime,
              loader: GridLoader | None = None) -> tuple[int, int, list[str]]:
    """Load hourly intensity for every zone over [start, end) into staging, one transaction.

    ``replay_year`` in a grid spec maps the accounted hours onto the same
    month/day/hour of a reference year (demo data); replayed hours keep the
    source's filled flags, and hours with no counterpart (29 February) take
    the previous day's value, flagged ``replay_previous_day``.
    """
    loader = loader or _default_grid_loader()
    start_aware, end_aware = start.replace(tzinfo=timezone.utc), end.replace(tzinfo=timezone.utc)
    specs: dict[str, dict[str, Any]] = {}
    for site in cfg.sites.values():
        specs.setdefault(site.zone, site.grid)
    rows_out: list[tuple[Any, ...]] = []
    whys: list[str | None] = []  # per row of rows_out: why it is implausible (stg_grid_implausible), or None
    bases: list[tuple[str | None, float | None]] = []  # per row of rows_out: (basis, upstream) for stg_grid_basis
    notes: list[str] = []
    for zone, spec in sorted(specs.items()):
        spec = dict(spec)
        replay = spec.pop("replay_year", None)
        spec.pop("marginal", None)  # a planning-only source (planning.py), not for accounting
        if replay is None:
            load = loader(spec, start_aware, end_aware)
            rows = list(load.rows)
        else:
            rows = []
            for year in range(start.year, end.year + 1):
                y_start = max(start_aware, datetime(year, 1, 1, tzinfo=timezone.utc))
                y_end = min(end_aware, datetime(year + 1, 1, 1, tzinfo=timezone.utc))
                r_start = _replace_year(y_start, replay) or _replace_year(y_start - timedelta(days=1), replay)
                r_end = _replace_year(y_end, replay) if y_end.year == year else \
                    datetime(replay + 1, 1, 1, tzinfo=timezone.utc)
                r_end = r_end or _replace_year(y_end + timedelta(days=1), replay)
                load = loader(spec, r_start, r_end)
                for r in load.rows:
                    shifted = _replace_year(r.hour_utc, year)
                    if shifted is not None and y_start <= shifted < y_end:
                        rows.append(replace(r, hour_utc=shifted, source=f"{r.source or spec['source']} "
                                                                        f"(replay {replay})"))
            by_hour: dict[datetime, list[Any]] = {}
            for r in rows:
                by_hour.setdefault(r.hour_utc, []).append(r)
            t = start_aware
            while t < end_aware:
                if t not in by_hour and (t - 24 * HOUR) in by_hour:
                    by_hour[t] = [replace(p, hour_utc=t, filled=True, fill_rule="replay_previous_day")
                                  for p in by_hour[t - 24 * HOUR]]
                t += HOUR
            rows = [r for group in by_hour.values() for r in group]
        notes += [f"{zone}: {n}" for n in getattr(load.report, "notes", [])]
        _require_every_hour(zone, rows, start_aware, end_aware)
        for r in rows:
            rows_out.append((zone, naive_utc(r.hour_utc), r.signal, r.grams_per_kwh, r.cfe_ratio, r.source,
                             r.filled, r.fill_rule))
            whys.append(r.implausible)
            bases.append((getattr(r, "basis", None), getattr(r, "upstream_grams_per_kwh", None)))
    # One row per key, the last one winning (as row-by-row INSERT OR REPLACE did): a single
    # statement may not write the same key twice.
    last = {r[:3]: (r, why, b) for r, why, b in zip(rows_out, whys, bases, strict=True)}
    rows_out = [r for r, _, _ in last.values()]
    flagged = [(*key, why) for key, (_, why, _) in last.items() if why is not None]
    stated = [(*key, *b) for key, (_, _, b) in last.items() if b[0] is not None]
    with transaction(con):
        for zone in specs:
            con.execute(statement("delete_intensity"), {"zone": zone, "start": start, "end": end})
            con.execute(statement("delete_implausible"), {"zone": zone, "start": start, "end": end})
            con.execute(statement("delete_basis"), {"zone": zone, "start": start, "end": end})
        if rows_out:
            columns = dict(zip(INTENSITY_COLUMNS, map(list, zip(*rows_out, strict=True)), strict=True))
            con.execute(statement("insert_intensity"), columns)
        if flagged:
            con.execute(statement("insert_implausible"),
                        dict(zip(("zone", "hour_utc", "signal", "reason"), map(list, zip(*flagged, strict=True)),
                                 strict=True)))
        if stated:
            con.execute(statement("insert_basis"),
                        dict(zip(("zone", "hour_utc", "signal", "basis", "upstream_grams_per_kwh"),
                                 map(list, zip(*stated, strict=True)), strict=True)))
        mark_dirty(con, start, end)
    return len(rows_out), sum(1 for r in rows_out if r[6]), notes


def _require_every_hour(zone: str, rows: list[Any], start: datetime, end: datetime) -> None:
    """Refuse the window when an hour has no average intensity (``fill: [none]`` leaves gaps).

    A missing hour would carry energy but no emissions into the facts: Scope 2
    under-counted without a word. Planning may work around gaps; accounting
    stops and says which hours, so a fill rule or better data can be added.
    """
    have = {naive_utc(r.hour_utc) for r in rows if r.signal == "average"}
    missing = [h for h in hours(start, end) if naive_utc(h) not in have]
    if missing:
        raise GridDataError(f"grid zone {zone}", None, None,
                            f"{len(missing)} hour(s) without an average intensity (first {missing[0].isoformat()}); "
                            "the window is refused rather than under-count Scope 2: add a fill rule such as "
                            "'linear' or 'static_annual' before 'none'")
