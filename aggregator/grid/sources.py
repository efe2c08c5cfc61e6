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
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from wattfleet.aggregator.grid.eia930 import read_eia930
from wattfleet.aggregator.grid.electricitymaps import ElectricityMapsClient, load_electricitymaps_csv
from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.grid.gaps import GapReport, fill_gaps, parse_chain
from wattfleet.aggregator.grid.httpjson import JsonHttp
from wattfleet.aggregator.grid.model import IntensityRow, Signal
from wattfleet.aggregator.grid.static import load_static_table, make_table, static_rows
from wattfleet.aggregator.grid.timeutil import ceil_hour, floor_hour, require_aware
from wattfleet.aggregator.grid.ukcarbon import UkCarbonClient
from wattfleet.aggregator.grid.watttime import SIGNALS, WattTimeClient

SPEC = "grid spec"
NEIGHBOUR_MARGIN = timedelta(hours=24)  # yesterday for previous_day_same_hour, next hours for linear

_COMMON = {"source", "zone", "fill", "static_table"}
_HTTP = {"base_url", "timeout_s", "retries", "backoff_s"}
_KEYS: dict[str, set[str]] = {
    "eia930": {"path"},
    "electricitymaps": {"path", "emission_factor", "endpoint", "token_env"} | _HTTP,
    "watttime": {"region", "signal_type", "endpoint", "horizon_hours", "min_points_per_hour"} | _HTTP,
    "ukcarbon": {"regionid", "postcode"} | _HTTP,
    "static": {"grams_per_kwh", "path"},
}
SOURCES = tuple(_KEYS)


@dataclass
class IntensityLoad:
    rows: list[IntensityRow]
    report: GapReport


def _need(spec: Mapping[str, Any], key: str) -> Any:
    value = spec.get(key)
    if value in (None, ""):
        raise GridDataError(SPEC, None, key, f"required for source {spec.get('source')!r}")
    return value


def _num(spec: Mapping[str, Any], key: str, default: float, integer: bool = False) -> Any:
    value = spec.get(key, default)
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value < 0:
        kind = "an integer" if integer else "a number"
        raise GridDataError(SPEC, None, key, f"must be {kind} >= 0, got {value!r}")
    return value


def _http(spec: Mapping[str, Any]) -> JsonHttp:
    return JsonHttp(timeout_s=float(_num(spec, "timeout_s", 30.0)), retries=_num(spec, "retries", 2, True),
                    backoff_s=float(_num(spec, "backoff_s", 1.0)))


def _kw(spec: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: spec[k] for k in keys if k in spec}


def _resolve(path: Any, base_dir: str | Path | None) -> Path:
    p = Path(path)
    return p if p.is_absolute() or base_dir is None else Path(base_dir) / p


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
    if not isinstance(spec, Mapping):
        raise GridDataError(SPEC, None, None, f"expected a mapping, got {type(spec).__name__}")
    source = spec.get("source")
    if source not in _KEYS:
        raise GridDataError(SPEC, None, "source", f"unknown source {source!r}; known: {list(SOURCES)}")
    unknown = set(spec) - _COMMON - _KEYS[source]
    if unknown:
        raise GridDataError(SPEC, None, ", ".join(sorted(unknown)),
                            f"unknown key(s) for source {source!r}; allowed: {sorted(_COMMON | _KEYS[source])}")
    start, end = floor_hour(require_aware(start, "start")), ceil_hour(require_aware(end, "end"))
    if end <= start:
        raise GridDataError(SPEC, None, "end", f"end {end.isoformat()} is not after start {start.isoformat()}")
    chain = parse_chain(spec.get("fill"))
    table = make_table(spec.get("static_table"), base_dir)
    now = require_aware(now, "now") if now is not None else datetime.now(timezone.utc)
    fetch_start = start - NEIGHBOUR_MARGIN
    fetch_end = max(end, min(end + NEIGHBOUR_MARGIN, ceil_hour(now)))

    zone: str | None = spec.get("zone")
    signal: Signal = "average"
    notes: list[str] = []
    origin: str
    if source == "eia930":
        path = _resolve(_need(spec, "path"), base_dir)
        origin = str(path)
        parsed = read_eia930(path, zone)
        zone, rows = parsed.zone, parsed.rows
        notes += [f"{path.name}:{e.line}: {e.hour_utc.isoformat()} has no intensity"
                  + (f" (only {', '.join(e.present_columns)})" if e.present_columns else " (empty row)")
                  for e in parsed.empty if start <= e.hour_utc < end]
    elif source == "electricitymaps" and spec.get("path"):
        paths = spec["path"] if isinstance(spec["path"], (list, tuple)) else [spec["path"]]
        origin = ", ".join(str(p) for p in paths)
        rows = []
        for p in paths:
            rows += load_electricitymaps_csv(_resolve(p, base_dir), zone, spec.get("emission_factor", "direct"))
    elif source == "electricitymaps":
        zone = _need(spec, "zone")
        client = ElectricityMapsClient(http=_http(spec), **_kw(spec, "base_url", "emission_factor", "token_env"))
        origin = client.base_url
        endpoint = spec.get("endpoint", "past-range")
        if endpoint == "past-range":
            rows = client.past_range(zone, fetch_start, fetch_end)
        elif endpoint == "history":
            rows = client.history(zone)
        elif endpoint == "latest":
            rows = client.latest(zone)
        else:
            raise GridDataError(SPEC, None, "endpoint", f"must be past-range, history or latest, got {endpoint!r}")
    elif source == "watttime":
        region = _need(spec, "region")
        signal_type = spec.get("signal_type", "co2_moer")
        if signal_type not in SIGNALS:
            raise GridDataError(SPEC, None, "signal_type", f"must be one of {sorted(SIGNALS)}, got {signal_type!r}")
        signal = SIGNALS[signal_type]
        zone = zone or region
        wt = WattTimeClient(http=_http(spec), **_kw(spec, "base_url"))
        origin = wt.base_url
        endpoint = spec.get("endpoint", "historical")
        mpph = _num(spec, "min_points_per_hour", 1, True)
        if endpoint == "historical":
            rows = wt.historical(region, fetch_start, fetch_end, signal_type, zone, mpph)
        elif endpoint == "forecast":
            rows = wt.forecast(region, signal_type, _num(spec, "horizon_hours", 24, True), zone, mpph)
        else:
            raise GridDataError(SPEC, None, "endpoint", f"must be historical or forecast, got {endpoint!r}")
    elif source == "ukcarbon":
        uk = UkCarbonClient(http=_http(spec), **_kw(spec, "base_url"))
        origin = uk.base_url
        if spec.get("regionid") is None and spec.get("postcode") is None:
            zone = zone or "GB"
            rows = uk.national(fetch_start, fetch_end, zone)
        else:
            rows = uk.regional(fetch_start, fetch_end, spec.get("regionid"), spec.get("postcode"), zone)
            zone = zone or (rows[0].zone if rows else f"GB-{spec.get('regionid') or spec.get('postcode')}")
    else:  # static
        zone = _need(spec, "zone")
        origin = "static table"
        own = None
        if spec.get("path"):  # the site's own table is authoritative: no default fallback
            origin = str(_resolve(spec["path"], base_dir))
            own = load_static_table(origin)
        rows = static_rows(zone, start, end, spec.get("grams_per_kwh"), own if own is not None else table)

    filled, report = fill_gaps(rows, start, end, chain, zone=zone, signal=signal, static_table=table)
    report.notes = notes + report.notes
    if report.unfilled and chain[-1].rule != "none":
        first = report.unfilled[0]
        why = "; ".join(report.unfilled_reasons.get(first, ())) or "no rule configured"
        raise GridDataError(
            origin, None, None,
            f"{len(report.unfilled)} of {report.expected_hours} hour(s) missing in zone {report.zone} and not "
            f"fillable by {[s.rule for s in chain]} (first {first.isoformat()}: {why}); add a fallback rule "
            f"such as 'linear' or 'static_annual', or end the chain with 'none' to accept gaps",
        )
    return IntensityLoad(rows=filled, report=report)


def zone_check(spec: Mapping[str, Any], zone: str, base_dir: str | Path | None = None) -> str | None:
    """Why ``spec`` cannot serve ``zone``, or None; offline checks only, never raises.

    For facility-config validation: a static table without the zone, a
    missing file. API sources are not contacted (None means "not known bad").
    """
    try:
        source = spec.get("source")
        if source not in _KEYS:
            return f"unknown grid source {source!r}; known: {list(SOURCES)}"
        if source == "static":
            if spec.get("grams_per_kwh") is not None:
                return None
            if spec.get("path"):
                where = _resolve(spec["path"], base_dir)
                if zone not in load_static_table(where):
                    return f"{where} has no annual factor for zone {zone!r}"
            elif zone not in make_table(spec.get("static_table"), base_dir):
                return f"the default static table has no annual factor for zone {zone!r}"
            return None
        paths = spec.get("path")
        if source in ("eia930", "electricitymaps") and paths:
            for p in paths if isinstance(paths, (list, tuple)) else [paths]:
                if not _resolve(p, base_dir).is_file():
                    return f"grid file not found: {_resolve(p, base_dir)}"
        return None
    except GridDataError as exc:
        return str(exc)
