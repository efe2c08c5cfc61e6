"""One entry point from a facility's grid spec to complete hourly intensity.

The facility config names its grid source as a small dict, e.g.::

    {"source": "eia930", "path": "data/CISO.csv", "zone": "CISO",
     "fill": ["previous_day_same_hour", "linear"]}
    {"source": "electricitymaps", "zone": "FR"}                       # API, token from env
    {"source": "electricitymaps", "path": "FR_2022_hourly.csv"}        # CSV export
    {"source": "watttime", "region": "CAISO_NORTH"}                    # marginal (co2_moer)
    {"source": "ukcarbon", "regionid": 13}                             # or postcode, or national
    {"source": "static", "zone": "FR"}                                 # annual table, last resort
    {"source": "static", "zone": "SE", "path": "static-intensity.csv"} # own table: zone,grams_per_kwh[,basis]

``static_table`` (a ``{zone: g_per_kwh}`` mapping or a CSV path) adds to or
overrides the default annual table for the ``static_annual`` fill rule.

:func:`load_intensity` returns every hour of [start, end) (filled by the
``fill`` chain where the source lacks it) plus the :class:`GapReport`. If
hours stay missing and the chain does not end in ``none``, it raises rather
than return an incomplete series that would quietly under-count Scope 2.
Unknown keys in the spec are errors, so a typo cannot silently change which
data is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from wattfleet.aggregator.grid.errors import GridDataError, plausible_intensity
from wattfleet.aggregator.grid.gaps import FillStep, GapReport, fill_gaps, parse_chain
from wattfleet.aggregator.grid.loaders import LOADERS, Window
from wattfleet.aggregator.grid.model import IntensityRow
from wattfleet.aggregator.grid.spec import (
    SOURCE_KEYS,
    SOURCES,
    SPEC,
    basis,
    check_spec,
    max_intensity,
    resolve_path,
)
from wattfleet.aggregator.grid.static import load_static_table, make_table
from wattfleet.aggregator.grid.timeutil import ceil_hour, floor_hour, require_aware

NEIGHBOUR_MARGIN = timedelta(hours=24)  # yesterday for previous_day_same_hour, next hours for linear


@dataclass
class IntensityLoad:
    rows: list[IntensityRow]
    report: GapReport


def load_intensity(
    spec: Mapping[str, Any],
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
    base_dir: str | Path | None = None,
) -> IntensityLoad:
    """Complete hourly rows for [start, end) from the source named in ``spec``.

    ``start`` is floored and ``end`` ceiled to whole UTC hours; both must be
    timezone-aware. Relative paths resolve against ``base_dir``. ``now``
    bounds how far past ``end`` API neighbours are fetched (tests pin it).
    """
    source = check_spec(spec)
    start, end = floor_hour(require_aware(start, "start")), ceil_hour(require_aware(end, "end"))
    if end <= start:
        raise GridDataError(SPEC, None, "end", f"end {end.isoformat()} is not after start {start.isoformat()}")
    chain = parse_chain(spec.get("fill"))
    table = make_table(spec.get("static_table"), base_dir)
    now = require_aware(now, "now") if now is not None else datetime.now(timezone.utc)
    window = Window(start, end, start - NEIGHBOUR_MARGIN, max(end, min(end + NEIGHBOUR_MARGIN, ceil_hour(now))),
                    base_dir, table)
    got = LOADERS[source](spec, window)
    bound = max_intensity(spec)
    for row in got.rows:  # API sources have no file line: the origin, zone and hour name the row
        plausible_intensity(row.grams_per_kwh, bound, got.origin, None,
                            f"{row.zone} {row.hour_utc.isoformat()} grams_per_kwh")
    filled, report = fill_gaps(got.rows, start, end, chain, zone=got.zone, signal=got.signal, static_table=table)
    stated = basis(spec)  # rows the source did not split (or a fill made) carry the source's basis
    filled = [r if r.basis is not None else replace(r, basis=stated) for r in filled]
    report.notes = got.notes + report.notes
    _require_complete(report, chain, got.origin)
    return IntensityLoad(rows=filled, report=report)


def _require_complete(report: GapReport, chain: list[FillStep], origin: str) -> None:
    """Raise when hours stay missing and the chain does not accept gaps (end in ``none``): an incomplete
    series would quietly under-count Scope 2. Planning may accept gaps; accounting never does
    (:func:`wattfleet.aggregator.ingest.grid_load.load_grid` refuses a window with any)."""
    if not report.unfilled or chain[-1].rule == "none":
        return
    first = report.unfilled[0]
    why = "; ".join(report.unfilled_reasons.get(first, ())) or "no rule configured"
    raise GridDataError(
        origin, None, None,
        f"{len(report.unfilled)} of {report.expected_hours} hour(s) missing in zone {report.zone} and not "
        f"fillable by {[s.rule for s in chain]} (first {first.isoformat()}: {why}); add a fallback rule "
        f"such as 'linear' or 'static_annual', or end the chain with 'none' to accept gaps",
    )


def zone_check(spec: Mapping[str, Any], zone: str, base_dir: str | Path | None = None) -> str | None:
    """Why ``spec`` cannot serve ``zone``, or None; offline checks only, never raises.

    For facility-config validation: a static table without the zone, a
    missing file. API sources are not contacted (None means "not known bad").
    """
    try:
        source = spec.get("source")
        if source not in SOURCE_KEYS:
            return f"unknown grid source {source!r}; known: {list(SOURCES)}"
        if source == "static":
            return _static_zone_problem(spec, zone, base_dir)
        if source in ("eia930", "electricitymaps"):
            return _missing_file(spec.get("path"), base_dir)
        return None
    except GridDataError as exc:
        return str(exc)


def _static_zone_problem(spec: Mapping[str, Any], zone: str, base_dir: str | Path | None) -> str | None:
    """A static source without its own factor needs the zone in its table (the site's, or the default)."""
    if spec.get("grams_per_kwh") is not None:
        return None
    if spec.get("path"):
        where = resolve_path(spec["path"], base_dir)
        if zone not in load_static_table(where):
            return f"{where} has no annual factor for zone {zone!r}"
    elif zone not in make_table(spec.get("static_table"), base_dir):
        return f"the default static table has no annual factor for zone {zone!r}"
    return None


def _missing_file(paths: Any, base_dir: str | Path | None) -> str | None:
    """The first configured grid file that does not exist (no path: an API source, nothing to check)."""
    if not paths:
        return None
    for p in paths if isinstance(paths, (list, tuple)) else [paths]:
        if not resolve_path(p, base_dir).is_file():
            return f"grid file not found: {resolve_path(p, base_dir)}"
    return None
