"""Electricity Maps: CSV exports and the v3 carbon-intensity API.

CSV export (data portal, one zone per file, hourly). Two header generations
exist and both are read::

    Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),
    Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,
    Data Source,Data Estimated,Data Estimation Method

    Datetime (UTC),Country,Zone name,Zone id,Carbon intensity gCO₂eq/kWh (direct),
    Carbon intensity gCO₂eq/kWh (Life cycle),Carbon-free energy percentage (CFE%),
    Renewable energy percentage (RE%),Data source,Data estimated,Data estimation method

API (``auth-token`` header, token from ``ELECTRICITYMAPS_TOKEN``):
``/v3/carbon-intensity/latest`` returns one point, ``/history`` the last 24
hours as ``{"zone":..,"history":[{"carbonIntensity":..,"datetime":"..Z",
"emissionFactorType":..,"isEstimated":..},..]}``, and ``/past-range`` a
start/end window (at most 10 days of hourly data per call) as ``{"zone":..,
"data":[..]}``.

Which factor: ``direct`` (combustion only) is the default because Scope 2
location-based reporting uses operational emission factors; the upstream
part that ``lifecycle`` (LCA) adds belongs to Scope 3 category 3, and using
LCA here would count it twice. Choose ``lifecycle`` explicitly for SCI-style
lifecycle reporting. The factor, and whether Electricity Maps estimated the
hour, are kept in ``IntensityRow.source`` (e.g. ``electricitymaps:direct``
or ``electricitymaps:direct:estimated``).
"""

from __future__ import annotations

import csv
import math
import os
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from wattfleet.aggregator.grid.errors import (
    DEFAULT_MAX_GRAMS_PER_KWH,
    GridDataError,
    csv_number,
    open_csv,
    plausible_intensity,
    read_header,
)
from wattfleet.aggregator.grid.hourly import group_by_hour, mean
from wattfleet.aggregator.grid.httpjson import JsonHttp, build_url
from wattfleet.aggregator.grid.model import IntensityRow
from wattfleet.aggregator.grid.timeutil import HOUR, ceil_hour, floor_hour, iso_z, parse_utc, require_aware

DEFAULT_BASE_URL = "https://api.electricitymaps.com"
TOKEN_ENV = "ELECTRICITYMAPS_TOKEN"
PAST_RANGE_MAX = timedelta(days=10)

EmissionFactor = Literal["direct", "lifecycle"]
FACTORS = ("direct", "lifecycle")


def _norm(name: str) -> str:
    """Header key that survives case changes and an ASCII '2' for '₂'."""
    return " ".join(name.replace("₂", "2").lower().split())


# normalised header -> role; covers the 2021-2023 and the 2024+ exports.
_CSV_COLUMNS = {
    _norm("Datetime (UTC)"): "datetime",
    _norm("Zone Id"): "zone",
    _norm("Carbon Intensity gCO₂eq/kWh (direct)"): "direct",
    _norm("Carbon Intensity gCO₂eq/kWh (LCA)"): "lifecycle",
    _norm("Carbon intensity gCO₂eq/kWh (Life cycle)"): "lifecycle",
    _norm("Low Carbon Percentage"): "cfe_percent",
    _norm("Carbon-free energy percentage (CFE%)"): "cfe_percent",
    _norm("Data Estimated"): "estimated",
}


def _source(factor: str, estimated: bool) -> str:
    return f"electricitymaps:{factor}" + (":estimated" if estimated else "")


def _check_factor(factor: str) -> None:
    if factor not in FACTORS:
        raise GridDataError("electricitymaps", None, "emission_factor", f"must be one of {FACTORS}, got {factor!r}")


def load_electricitymaps_csv(
    path: str | Path, zone: str | None = None, emission_factor: EmissionFactor = "direct",
    max_grams_per_kwh: float = DEFAULT_MAX_GRAMS_PER_KWH,
) -> list[IntensityRow]:
    """Hourly rows of one Electricity Maps CSV export; empty intensities are gaps."""
    _check_factor(emission_factor)
    path = Path(path)
    fh = open_csv(path)
    with fh:
        reader = csv.reader(fh)
        header = read_header(reader, path)
        idx: dict[str, int] = {}
        names: dict[str, str] = {}
        for i, name in enumerate(header):
            role = _CSV_COLUMNS.get(_norm(name))
            if role and role not in idx:
                idx[role] = i
                names[role] = name.strip()
        for role, shown in (("datetime", "Datetime (UTC)"), (emission_factor, f"carbon intensity ({emission_factor})")):
            if role not in idx:
                raise GridDataError(str(path), 1, shown, f"missing column; header is {header}")
        rows: list[IntensityRow] = []
        seen: dict[datetime, int] = {}
        for rec in reader:
            line = reader.line_num
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                continue
            if len(rec) != len(header):
                raise GridDataError(str(path), line, None, f"expected {len(header)} columns, found {len(rec)}")
            text = rec[idx["datetime"]]
            try:
                hour = parse_utc(text)
            except ValueError:
                raise GridDataError(str(path), line, names["datetime"], f"not a timestamp: {text!r}") from None
            if hour.minute or hour.second or hour.microsecond:
                raise GridDataError(str(path), line, names["datetime"], f"not on the hour: {text!r}")
            if hour in seen:
                raise GridDataError(str(path), line, names["datetime"], f"duplicate hour, first on line {seen[hour]}")
            seen[hour] = line
            ci_text = rec[idx[emission_factor]].strip()
            if not ci_text:
                continue  # no value for this hour: a gap for gaps.py, never a guess
            ci = plausible_intensity(csv_number(ci_text, path, line, names[emission_factor]), max_grams_per_kwh,
                                     path, line, names[emission_factor])
            cfe = None
            if "cfe_percent" in idx and rec[idx["cfe_percent"]].strip():
                pct = csv_number(rec[idx["cfe_percent"]].strip(), path, line, names["cfe_percent"])
                if not 0.0 <= pct <= 100.0:
                    raise GridDataError(str(path), line, names["cfe_percent"], f"percentage out of 0..100: {pct}")
                cfe = pct / 100.0
            estimated = "estimated" in idx and rec[idx["estimated"]].strip().lower() in ("true", "1", "yes")
            row_zone = zone or ("zone" in idx and rec[idx["zone"]].strip()) or path.stem
            rows.append(IntensityRow(zone=row_zone, hour_utc=hour, grams_per_kwh=ci, signal="average",
                                     source=_source(emission_factor, estimated), cfe_ratio=cfe))
    rows.sort(key=lambda r: r.hour_utc)
    for a, b in pairwise(rows):
        if a.zone != b.zone:
            raise GridDataError(str(path), None, names.get("zone", "Zone Id"),
                                f"file mixes zones {a.zone!r} and {b.zone!r}; export one zone per file")
    if len(seen) >= 2 and min(b - a for a, b in pairwise(sorted(seen))) > HOUR:
        raise GridDataError(str(path), None, names["datetime"],
                            "rows are more than one hour apart: not an hourly export (daily/monthly files "
                            "cannot be used as hourly intensity)")
    return rows


def parse_carbon_intensity_json(
    payload: Any, url: str, zone: str | None = None, emission_factor: EmissionFactor = "direct"
) -> list[IntensityRow]:
    """Rows from a latest / history / past-range response.

    A point with ``carbonIntensity: null`` is a gap. Points inside one hour
    (finer granularity) are averaged. A response in a different factor than
    asked for is refused rather than mixed in.
    """
    if not isinstance(payload, dict):
        raise GridDataError(url, None, None, f"expected a JSON object, got {type(payload).__name__}")
    if "history" in payload:
        key, items = "history", payload["history"]
    elif "data" in payload:
        key, items = "data", payload["data"]
    elif "carbonIntensity" in payload:
        key, items = "", [payload]
    else:
        raise GridDataError(url, None, None, "no 'history', 'data' or 'carbonIntensity' in response")
    if not isinstance(items, list):
        raise GridDataError(url, None, key, "expected a list")
    zone = zone or payload.get("zone")
    points: list[tuple[datetime, tuple[float, bool]]] = []
    seen: set[datetime] = set()
    for i, item in enumerate(items):
        where = f"{key}[{i}]" if key else ""
        if not isinstance(item, dict):
            raise GridDataError(url, None, where or None, "expected an object")
        dt_text = item.get("datetime")
        try:
            when = parse_utc(str(dt_text))
        except ValueError:
            raise GridDataError(url, None, f"{where}.datetime".lstrip("."), f"not a timestamp: {dt_text!r}") from None
        if when in seen:
            raise GridDataError(url, None, f"{where}.datetime".lstrip("."), f"duplicate point {dt_text!r}")
        seen.add(when)
        factor = item.get("emissionFactorType")
        if factor is not None and factor != emission_factor:
            raise GridDataError(url, None, f"{where}.emissionFactorType".lstrip("."),
                                f"response is {factor!r}, asked for {emission_factor!r}")
        ci = item.get("carbonIntensity")
        if ci is None:
            continue
        if isinstance(ci, bool) or not isinstance(ci, (int, float)) or not math.isfinite(ci):
            raise GridDataError(url, None, f"{where}.carbonIntensity".lstrip("."), f"not a number: {ci!r}")
        if ci < 0:
            raise GridDataError(url, None, f"{where}.carbonIntensity".lstrip("."), f"negative intensity {ci}")
        points.append((when, (float(ci), bool(item.get("isEstimated")))))
    if zone is None:
        raise GridDataError(url, None, "zone", "response names no zone and none was given")
    rows = []
    for hour, vals in group_by_hour(points).items():
        rows.append(IntensityRow(zone=zone, hour_utc=hour, grams_per_kwh=mean([v for v, _ in vals]),
                                 signal="average", source=_source(emission_factor, any(e for _, e in vals))))
    return rows


class ElectricityMapsClient:
    """v3 API client; the token comes from ``ELECTRICITYMAPS_TOKEN`` unless given."""

    def __init__(
        self,
        token: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        emission_factor: EmissionFactor = "direct",
        http: JsonHttp | None = None,
        token_env: str = TOKEN_ENV,
    ) -> None:
        _check_factor(emission_factor)
        found = token if token is not None else os.environ.get(token_env)
        if not found:
            raise GridDataError(f"env:{token_env}", None, None,
                                "Electricity Maps API token not set (export it or pass token=)")
        self.token: str = found
        self.token_env = token_env
        self.base_url = base_url
        self.emission_factor = emission_factor
        self.http = http or JsonHttp()

    def _get(self, path: str, params: dict[str, Any]) -> tuple[Any, str]:
        params = {**params, "emissionFactorType": self.emission_factor}
        url = build_url(self.base_url, path, params)
        payload = self.http.get(url, headers={"auth-token": self.token},
                                auth_hint=f"check the Electricity Maps token in {self.token_env}")
        return payload, url

    def latest(self, zone: str) -> list[IntensityRow]:
        payload, url = self._get("/v3/carbon-intensity/latest", {"zone": zone})
        return parse_carbon_intensity_json(payload, url, zone, self.emission_factor)

    def history(self, zone: str) -> list[IntensityRow]:
        """The last 24 hours."""
        payload, url = self._get("/v3/carbon-intensity/history", {"zone": zone})
        return parse_carbon_intensity_json(payload, url, zone, self.emission_factor)

    def past_range(self, zone: str, start: datetime, end: datetime) -> list[IntensityRow]:
        """Hours in [start, end), fetched in windows the API accepts."""
        start, end = floor_hour(require_aware(start, "start")), ceil_hour(require_aware(end, "end"))
        rows: dict[datetime, IntensityRow] = {}
        t = start
        while t < end:
            t_end = min(end, t + PAST_RANGE_MAX)
            payload, url = self._get("/v3/carbon-intensity/past-range",
                                     {"zone": zone, "start": iso_z(t), "end": iso_z(t_end)})
            for row in parse_carbon_intensity_json(payload, url, zone, self.emission_factor):
                if start <= row.hour_utc < end:
                    rows[row.hour_utc] = row
            t = t_end
        return [rows[h] for h in sorted(rows)]
