"""Ingest: telemetry and grid intensity into DuckDB staging, then facts and rollups.

Idempotent and resumable by construction: each hour window of a source is
replaced (delete + insert) together with its ``ingest_window`` record, its
watermark and its month's dirty mark in ONE transaction, so a crash leaves
either the whole window or none of it, and re-running any range gives the
same rows. Facts are rebuilt per dirty month afterwards (also one
transaction each); a crash before that leaves the month dirty and the next
run rebuilds it. Each run re-reads ``lookback_hours`` before the watermark
so samples that arrived late re-process their hours.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

import duckdb
from tqdm import tqdm

from wattfleet.aggregator.config.model import FacilityConfig
from wattfleet.aggregator.store.database import load_dimensions, naive_utc, rebuild_dirty, single_threaded, sql_text, transaction
from wattfleet.aggregator.ingest.telemetry import Telemetry, TelemetrySource

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
DEFAULT_INITIAL_HOURS = 7 * 24  # first run without --from: the last week
SETTLE = timedelta(minutes=5)  # an hour is complete once its last scrapes have landed

GridLoader = Callable[..., Any]


@dataclass
class IngestResult:
    start: datetime
    end: datetime
    windows: int = 0
    energy_rows: int = 0
    inference_rows: int = 0
    intensity_rows: int = 0
    filled_intensity_hours: int = 0
    months_rebuilt: list[date] = field(default_factory=list)
    grid_notes: list[str] = field(default_factory=list)


def floor_hour(dt: datetime) -> datetime:
    return dt.replace(minute=0, second=0, microsecond=0)


def month_of(dt: datetime) -> date:
    return date(dt.year, dt.month, 1)


def get_watermark(con: duckdb.DuckDBPyConnection, source: str) -> datetime | None:
    row = con.execute("SELECT watermark_utc FROM ingest_watermark WHERE source = ?", [source]).fetchone()
    return row[0] if row else None


def default_range(con: duckdb.DuckDBPyConnection, source: str, now: datetime, lookback_hours: int
                  ) -> tuple[datetime, datetime]:
    end = floor_hour(naive_utc(now) - SETTLE)
    wm = get_watermark(con, source)
    start = (wm - lookback_hours * HOUR) if wm else end - DEFAULT_INITIAL_HOURS * HOUR
    return min(start, end), end


# --- grid intensity ---------------------------------------------------------------
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
        for r in rows:
            rows_out.append((zone, naive_utc(r.hour_utc), r.signal, r.grams_per_kwh, r.cfe_ratio, r.source,
                             r.filled, r.fill_rule))
    # One row per key, the last one winning (as row-by-row INSERT OR REPLACE did): a single
    # statement may not write the same key twice.
    rows_out = list({r[:3]: r for r in rows_out}.values())
    with transaction(con):
        for zone in specs:
            con.execute(sql_text("ingest_delete_intensity.sql"), {"zone": zone, "start": start, "end": end})
        if rows_out:
            columns = dict(zip(INTENSITY_COLUMNS, map(list, zip(*rows_out))))
            con.execute(sql_text("ingest_insert_intensity.sql"), columns)
        _mark_dirty(con, start, end)
    return len(rows_out), sum(1 for r in rows_out if r[6]), notes


INTENSITY_COLUMNS = ("zone", "hour_utc", "signal", "grams_per_kwh", "cfe_ratio", "source", "filled", "fill_rule")


def _mark_dirty(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> None:
    m = month_of(start)
    while datetime(m.year, m.month, 1) < end:
        con.execute(sql_text("ingest_mark_dirty.sql"), {"month": m})
        m = date(m.year + (m.month == 12), m.month % 12 + 1, 1)


# --- telemetry windows ----------------------------------------------------------------
ENERGY_COLUMNS = ("node", "cluster", "site_label", "device", "component", "domain", "gpu_model", "method",
                  "namespace", "team", "joules")
INFERENCE_COLUMNS = ("node", "cluster", "site_label", "engine", "model", "phase", "energy_joules", "tokens")


def split_by_hour(telemetry: Telemetry) -> dict[datetime, Telemetry]:
    """Each hour's rows of a page, in one pass: a window never re-scans the whole page."""
    out: dict[datetime, Telemetry] = {}
    for r in telemetry.energy:
        out.setdefault(r.hour_utc, Telemetry([r.hour_utc], [], [])).energy.append(r)
    for i in telemetry.inference:
        out.setdefault(i.hour_utc, Telemetry([i.hour_utc], [], [])).inference.append(i)
    return out


def _columns(rows: list[Any], names: tuple[str, ...]) -> dict[str, list[Any]]:
    """Rows as parallel lists, one per column: the parameters of a set-based ``unnest`` insert."""
    return {name: [getattr(r, name) for r in rows] for name in names}


def write_window(con: duckdb.DuckDBPyConnection, source: str, hour: datetime, telemetry: Telemetry) -> int:
    """Replace one hour of one source, its bookkeeping and watermark, atomically.

    ``telemetry`` may hold other hours too (only ``hour``'s rows are written);
    pass one hour's rows (:func:`split_by_hour`) to avoid scanning a page per hour.
    Rows go in with one set-based statement per table (``sql/ingest_insert_*.sql``).
    """
    energy = [r for r in telemetry.energy if r.hour_utc == hour]
    inference = [r for r in telemetry.inference if r.hour_utc == hour]
    window = {"source": source, "hour": hour}
    with transaction(con):
        con.execute(sql_text("ingest_delete_energy.sql"), window)
        con.execute(sql_text("ingest_delete_inference.sql"), window)
        if energy:
            con.execute(sql_text("ingest_insert_energy.sql"), {**window, **_columns(energy, ENERGY_COLUMNS)})
        if inference:
            con.execute(sql_text("ingest_insert_inference.sql"),
                        {**window, **_columns(inference, INFERENCE_COLUMNS)})
        con.execute(sql_text("ingest_record_window.sql"), {**window, "rows": len(energy) + len(inference)})
        con.execute(sql_text("ingest_advance_watermark.sql"), {"source": source, "watermark": hour + HOUR})
        con.execute(sql_text("ingest_mark_dirty.sql"), {"month": month_of(hour)})
    return len(energy) + len(inference)


def ingest(con: duckdb.DuckDBPyConnection, cfg: FacilityConfig, source: TelemetrySource,
           start: datetime | None = None, end: datetime | None = None, *, lookback_hours: int = 3,
           now: datetime | None = None, grid_loader: GridLoader | None = None, progress: bool = False,
           on_window: Callable[[datetime], None] | None = None) -> IngestResult:
    """Pull [start, end) (whole UTC hours) from ``source`` and rebuild the affected months.

    Without ``start`` a run resumes ``lookback_hours`` before the watermark;
    without ``end`` it stops at the last complete hour. ``on_window(hour)``
    runs after each committed window (progress hooks, fault injection).
    """
    now = now or datetime.now(timezone.utc)
    d_start, d_end = default_range(con, source.name, now, lookback_hours)
    start = floor_hour(naive_utc(start)) if start else d_start
    end = floor_hour(naive_utc(end)) if end else d_end
    result = IngestResult(start, end)
    load_dimensions(con, cfg)
    if end <= start:
        result.months_rebuilt = rebuild_dirty(con)
        return result
    result.intensity_rows, result.filled_intensity_hours, result.grid_notes = \
        load_grid(con, cfg, start, end, grid_loader)
    total_hours = int((end - start) / HOUR)
    bar = tqdm(total=total_hours, unit="h", desc=f"ingest {source.name}", disable=not progress)
    try:
        page = start
        while page < end:
            page_end = min(end, page + source.page_hours * HOUR)
            by_hour = split_by_hour(source.fetch(page, page_end))
            hour = page
            while hour < page_end:
                window = by_hour.pop(hour, None) or Telemetry([hour], [], [])
                write_window(con, source.name, hour, window)
                result.windows += 1
                result.energy_rows += len(window.energy)
                result.inference_rows += len(window.inference)
                bar.update(1)
                if on_window is not None:
                    on_window(hour)
                hour += HOUR
            page = page_end
    finally:
        bar.close()
    from wattfleet.aggregator.inference.fit_step import run_inference_step, supports  # requests, methods, token fit (issue 3)
    if supports(source):
        run_inference_step(con, source, start, end)
    result.months_rebuilt = rebuild_dirty(con)
    return result


def totals(con: duckdb.DuckDBPyConnection, month: date | None = None) -> dict[str, float]:
    """Fleet totals from the facts (for tests, logs and the CLI summary)."""
    where, params = "", []
    if month is not None:
        where, params = "WHERE date_trunc('month', hour_utc) = ?", [datetime(month.year, month.month, 1)]
    with single_threaded(con):  # bit-identical on every run (see store.single_threaded)
        row = _totals_row(con, where, params)
    keys = ("it_kwh", "facility_kwh", "scope1_g", "scope2_location_g", "scope2_market_g", "scope3_embodied_g",
            "scope3_upstream_g", "water_onsite_l", "water_offsite_l", "cfe_kwh", "rows")
    return dict(zip(keys, (float(v) for v in row)))


def _totals_row(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> tuple[Any, ...]:
    return con.execute(
        "SELECT coalesce(fsum(it_kwh),0), coalesce(fsum(facility_kwh),0), coalesce(fsum(scope1_g),0), "
        "coalesce(fsum(scope2_location_g),0), coalesce(fsum(scope2_market_g),0), coalesce(fsum(scope3_embodied_g),0), "
        "coalesce(fsum(scope3_upstream_g),0), coalesce(fsum(water_onsite_l),0), coalesce(fsum(water_offsite_l),0), "
        f"coalesce(fsum(cfe_kwh),0), count(*) FROM fact_device_hour {where}", params).fetchone()
