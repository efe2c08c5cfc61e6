"""WattTime v3 API: marginal (MOER) or average (AOER) intensity.

Auth: ``GET {base}/login`` with HTTP basic auth (``WATTTIME_USERNAME`` /
``WATTTIME_PASSWORD``; the official SDK's ``WATTTIME_USER`` is accepted too)
returns ``{"token": ".."}``, a JWT valid about 30 minutes, sent as
``Authorization: Bearer``. A 401 on a data call logs in once more and
retries, so a long backfill survives token expiry.

Data: ``/v3/historical`` (start/end, at most 32 days per call) and
``/v3/forecast`` both return ``{"data":[{"point_time":"..","value":..},..],
"meta":{"units":"lbs_co2_per_mwh","signal_type":"co2_moer",..}}`` with
5-minute points. Values are converted from lb/MWh to g/kWh
(1 lb = 453.59237 g, 1 MWh = 1000 kWh, so x 0.45359237) and the points of an
hour are averaged.

``co2_moer`` is a *marginal* signal (for deciding when and where to run),
``co2_aoer`` an *average* one; ``signal`` on each row says which.
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timedelta
from typing import Any

from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.grid.hourly import group_by_hour, mean
from wattfleet.aggregator.grid.httpjson import JsonHttp, basic_auth_header, build_url
from wattfleet.aggregator.grid.model import IntensityRow, Signal
from wattfleet.aggregator.grid.timeutil import ceil_hour, floor_hour, iso_z, parse_utc, require_aware

DEFAULT_BASE_URL = "https://api.watttime.org"
USERNAME_ENVS = ("WATTTIME_USERNAME", "WATTTIME_USER")
PASSWORD_ENV = "WATTTIME_PASSWORD"
LBS_PER_MWH_TO_G_PER_KWH = 0.45359237
HISTORICAL_MAX = timedelta(days=30)

SIGNALS: dict[str, Signal] = {"co2_moer": "marginal", "co2_aoer": "average"}
UNITS_TO_G_PER_KWH = {"lbs_co2_per_mwh": LBS_PER_MWH_TO_G_PER_KWH}


def lbs_per_mwh_to_g_per_kwh(value: float) -> float:
    return value * LBS_PER_MWH_TO_G_PER_KWH


def _signal(signal_type: str) -> Signal:
    try:
        return SIGNALS[signal_type]
    except KeyError:
        raise GridDataError("watttime", None, "signal_type",
                            f"must be one of {sorted(SIGNALS)}, got {signal_type!r}") from None


def parse_watttime_json(
    payload: Any, url: str, zone: str, signal_type: str = "co2_moer", kind: str = "historical",
    min_points_per_hour: int = 1,
) -> list[IntensityRow]:
    """Hourly mean rows from a historical or forecast response.

    An hour with fewer than ``min_points_per_hour`` points is left out (a gap
    for :mod:`.gaps`); ``value: null`` points are skipped.
    """
    signal = _signal(signal_type)
    if not isinstance(payload, dict):
        raise GridDataError(url, None, None, f"expected a JSON object, got {type(payload).__name__}")
    meta = payload.get("meta")
    if not isinstance(meta, dict):
        raise GridDataError(url, None, "meta", "missing; cannot tell the units of the values")
    got_signal = meta.get("signal_type")
    if got_signal is not None and got_signal != signal_type:
        raise GridDataError(url, None, "meta.signal_type", f"response is {got_signal!r}, asked for {signal_type!r}")
    units = meta.get("units")
    if units not in UNITS_TO_G_PER_KWH:
        raise GridDataError(url, None, "meta.units", f"unsupported units {units!r}; expected lbs_co2_per_mwh")
    factor = UNITS_TO_G_PER_KWH[units]
    items = payload.get("data")
    if not isinstance(items, list):
        raise GridDataError(url, None, "data", "missing or not a list")
    points: list[tuple[datetime, float]] = []
    seen: set[datetime] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise GridDataError(url, None, f"data[{i}]", "expected an object")
        text = item.get("point_time")
        try:
            when = parse_utc(str(text))
        except ValueError:
            raise GridDataError(url, None, f"data[{i}].point_time", f"not a timestamp: {text!r}") from None
        if when in seen:
            continue  # chunk edges overlap (the API's end is inclusive): same point twice
        seen.add(when)
        value = item.get("value")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise GridDataError(url, None, f"data[{i}].value", f"not a number: {value!r}")
        if value < 0 and signal == "average":
            raise GridDataError(url, None, f"data[{i}].value", f"negative average intensity {value}")
        # A negative MOER is possible (curtailment: extra load displaces nothing or
        # raises clean output), so marginal values are not range-checked.
        points.append((when, value * factor))
    rows = []
    for hour, values in group_by_hour(points).items():
        if len(values) < min_points_per_hour:
            continue
        rows.append(IntensityRow(zone=zone, hour_utc=hour, grams_per_kwh=mean(values), signal=signal,
                                 source=f"watttime:{signal_type}:{kind}"))
    return rows


class WattTimeClient:
    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        http: JsonHttp | None = None,
    ) -> None:
        user = username or next((os.environ[e] for e in USERNAME_ENVS if os.environ.get(e)), None)
        secret = password or os.environ.get(PASSWORD_ENV)
        if not user or not secret:
            raise GridDataError(f"env:{USERNAME_ENVS[0]}/{PASSWORD_ENV}", None, None,
                                "WattTime username/password not set (export them or pass username=/password=)")
        self.username: str = user
        self.password: str = secret
        self.base_url = base_url
        self.http = http or JsonHttp()
        self.token: str | None = None

    def login(self) -> str:
        url = build_url(self.base_url, "/login")
        payload = self.http.get(url, headers={"Authorization": basic_auth_header(self.username, self.password)},
                                auth_hint=f"check {USERNAME_ENVS[0]} and {PASSWORD_ENV}")
        token = payload.get("token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise GridDataError(url, None, "token", "login response has no token")
        self.token = token
        return token

    def _get(self, path: str, params: dict[str, Any]) -> tuple[Any, str]:
        url = build_url(self.base_url, path, params)
        for attempt in (0, 1):
            if self.token is None:
                self.login()
            try:
                return self.http.get(url, headers={"Authorization": f"Bearer {self.token}"},
                                     auth_hint="WattTime rejected the token; check the account's data access"), url
            except GridDataError as exc:
                if exc.status == 401 and attempt == 0:
                    self.token = None  # expired JWT: log in again once
                    continue
                raise
        raise AssertionError("unreachable")

    def historical(
        self, region: str, start: datetime, end: datetime, signal_type: str = "co2_moer",
        zone: str | None = None, min_points_per_hour: int = 1,
    ) -> list[IntensityRow]:
        """Hours in [start, end), in windows the API accepts."""
        _signal(signal_type)
        zone = zone or region
        start, end = floor_hour(require_aware(start, "start")), ceil_hour(require_aware(end, "end"))
        rows: dict[datetime, IntensityRow] = {}
        t = start
        while t < end:
            t_end = min(end, t + HISTORICAL_MAX)
            payload, url = self._get("/v3/historical", {"region": region, "signal_type": signal_type,
                                                        "start": iso_z(t), "end": iso_z(t_end)})
            for row in parse_watttime_json(payload, url, zone, signal_type, "historical", min_points_per_hour):
                if t <= row.hour_utc < t_end:
                    rows[row.hour_utc] = row
            t = t_end
        return [rows[h] for h in sorted(rows)]

    def forecast(
        self, region: str, signal_type: str = "co2_moer", horizon_hours: int = 24, zone: str | None = None,
        min_points_per_hour: int = 1,
    ) -> list[IntensityRow]:
        _signal(signal_type)
        payload, url = self._get("/v3/forecast", {"region": region, "signal_type": signal_type,
                                                  "horizon_hours": horizon_hours})
        return parse_watttime_json(payload, url, zone or region, signal_type, "forecast", min_points_per_hour)
