"""UK Carbon Intensity API (NESO, no auth): national and regional GB data.

National ``/intensity/{from}/{to}``::

    {"data":[{"from":"2018-01-20T12:00Z","to":"2018-01-20T12:30Z",
              "intensity":{"forecast":266,"actual":263,"index":"moderate"}}]}

Regional ``/regional/intensity/{from}/{to}/regionid/{id}`` (or ``/postcode/{outcode}``)::

    {"data":{"regionid":13,"shortname":"London","data":[{"from":..,"to":..,
             "intensity":{"forecast":..,"index":..},"generationmix":[{"fuel":"wind","perc":..},..]}]}}

Half-hours are averaged to hours. Each half-hour uses ``actual`` when the
API has it and falls back to ``forecast`` (regional data is forecast only);
the row's source says which: ``ukcarbon:actual``, ``ukcarbon:forecast`` or
``ukcarbon:actual+forecast`` when the two halves differ. An hour with
neither half is a gap; with one half it is that half's value, and the source
gets a ``:half`` suffix so that the thinner basis stays visible.

The carbon-free share of the regional mix counts nuclear, wind, solar and
hydro, as for EIA-930 (biomass, imports and "other" are not counted).

Requests ask for at most 13 days (the API refuses more than 14) and never
cross a new year; ``from`` is sent one minute past the boundary because the
API otherwise starts with the half-hour that *ends* at ``from``. Only
half-hours starting inside the window are kept.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.grid.hourly import group_by_hour, mean
from wattfleet.aggregator.grid.httpjson import JsonHttp, build_url
from wattfleet.aggregator.grid.model import IntensityRow
from wattfleet.aggregator.grid.timeutil import UTC, ceil_hour, floor_hour, parse_utc, require_aware

DEFAULT_BASE_URL = "https://api.carbonintensity.org.uk"
MAX_WINDOW = timedelta(days=13)
CARBON_FREE_FUELS = ("nuclear", "wind", "solar", "hydro")


def _fmt(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    out = []
    t = start
    while t < end:
        new_year = datetime(t.year + 1, 1, 1, tzinfo=UTC)
        t_end = min(end, t + MAX_WINDOW, new_year)
        out.append((t, t_end))
        t = t_end
    return out


def _number(value: Any, url: str, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GridDataError(url, None, field, f"not a number: {value!r}")
    if value < 0:
        raise GridDataError(url, None, field, f"negative intensity {value}")
    return float(value)


def _cfe(mix: Any, url: str, field: str) -> float | None:
    if mix is None:
        return None
    if not isinstance(mix, list):
        raise GridDataError(url, None, field, "expected a list")
    total = 0.0
    clean = 0.0
    for j, part in enumerate(mix):
        perc = part.get("perc") if isinstance(part, dict) else None
        if isinstance(perc, bool) or not isinstance(perc, (int, float)) or not math.isfinite(perc) or perc < 0:
            raise GridDataError(url, None, f"{field}[{j}].perc", f"not a percentage: {perc!r}")
        total += perc
        if part.get("fuel") in CARBON_FREE_FUELS:
            clean += perc
    return clean / total if total > 0 else None


def parse_halfhours(items: Any, url: str, zone: str, field: str = "data") -> list[IntensityRow]:
    """Hourly rows from a list of half-hour periods."""
    if not isinstance(items, list):
        raise GridDataError(url, None, field, "missing or not a list")
    halves: list[tuple[datetime, tuple[float, str, float | None]]] = []
    seen: set[datetime] = set()
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise GridDataError(url, None, where, "expected an object")
        text = item.get("from")
        try:
            start = parse_utc(str(text))
        except ValueError:
            raise GridDataError(url, None, f"{where}.from", f"not a timestamp: {text!r}") from None
        if start.minute not in (0, 30) or start.second or start.microsecond:
            raise GridDataError(url, None, f"{where}.from", f"not a half-hour boundary: {text!r}")
        if start in seen:
            continue  # window edges overlap: the same half-hour twice
        seen.add(start)
        intensity = item.get("intensity")
        if not isinstance(intensity, dict):
            raise GridDataError(url, None, f"{where}.intensity", "missing or not an object")
        actual = _number(intensity.get("actual"), url, f"{where}.intensity.actual")
        forecast = _number(intensity.get("forecast"), url, f"{where}.intensity.forecast")
        if actual is not None:
            value, kind = actual, "actual"
        elif forecast is not None:
            value, kind = forecast, "forecast"
        else:
            continue  # neither: a gap
        halves.append((start, (value, kind, _cfe(item.get("generationmix"), url, f"{where}.generationmix"))))
    rows = []
    for hour, parts in group_by_hour(halves).items():
        kinds = sorted({k for _, k, _ in parts})
        source = "ukcarbon:" + "+".join(kinds) + (":half" if len(parts) < 2 else "")
        cfes = [c for _, _, c in parts]
        cfe = mean(cfes) if all(c is not None for c in cfes) else None  # type: ignore[arg-type]
        rows.append(IntensityRow(zone=zone, hour_utc=hour, grams_per_kwh=mean([v for v, _, _ in parts]),
                                 signal="average", source=source, cfe_ratio=cfe))
    return rows


def parse_national_json(payload: Any, url: str, zone: str = "GB") -> list[IntensityRow]:
    if not isinstance(payload, dict):
        raise GridDataError(url, None, None, f"expected a JSON object, got {type(payload).__name__}")
    return parse_halfhours(payload.get("data"), url, zone)


def parse_regional_json(payload: Any, url: str, zone: str | None = None) -> list[IntensityRow]:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise GridDataError(url, None, "data", "expected {'data': {'regionid':.., 'data': [..]}}")
    region = payload["data"]
    zone = zone or f"GB-{region.get('regionid', region.get('postcode', 'region'))}"
    return parse_halfhours(region.get("data"), url, zone, "data.data")


class UkCarbonClient:
    def __init__(self, base_url: str = DEFAULT_BASE_URL, http: JsonHttp | None = None) -> None:
        self.base_url = base_url
        self.http = http or JsonHttp()

    def national(self, start: datetime, end: datetime, zone: str = "GB") -> list[IntensityRow]:
        return self._fetch_path("/intensity", start, end, "", lambda p, u: parse_national_json(p, u, zone))

    def regional(
        self, start: datetime, end: datetime, regionid: int | None = None, postcode: str | None = None,
        zone: str | None = None,
    ) -> list[IntensityRow]:
        if (regionid is None) == (postcode is None):
            raise GridDataError("ukcarbon", None, "regionid/postcode", "give exactly one of regionid or postcode")
        if regionid is not None:
            suffix = f"/regionid/{int(regionid)}"
        else:
            suffix = f"/postcode/{urllib.parse.quote(str(postcode), safe='')}"
        return self._fetch_path("/regional/intensity", start, end, suffix,
                                lambda p, u: parse_regional_json(p, u, zone))

    def _fetch_path(
        self, prefix: str, start: datetime, end: datetime, suffix: str,
        parse: Callable[[Any, str], list[IntensityRow]],
    ) -> list[IntensityRow]:
        start, end = floor_hour(require_aware(start, "start")), ceil_hour(require_aware(end, "end"))
        rows: dict[datetime, IntensityRow] = {}
        for w_start, w_end in _windows(start, end):
            path = f"{prefix}/{_fmt(w_start + timedelta(minutes=1))}/{_fmt(w_end)}{suffix}"
            url = build_url(self.base_url, path)
            for row in parse(self.http.get(url), url):
                if w_start <= row.hour_utc < w_end:
                    rows[row.hour_utc] = row
        return [rows[h] for h in sorted(rows)]
