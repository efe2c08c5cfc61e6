"""WattTime v3: login, bearer token, lb/MWh -> g/kWh, 5-minute -> hourly."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from fixtures.grid_api import ApiServer, Seen, fixture_json
from wattfleet.aggregator.grid import (
    LBS_PER_MWH_TO_G_PER_KWH,
    GridDataError,
    JsonHttp,
    WattTimeClient,
    lbs_per_mwh_to_g_per_kwh,
    load_intensity,
    parse_watttime_json,
)

UTC = timezone.utc
FAST = JsonHttp(timeout_s=5.0, retries=0, backoff_s=0.0)
TOKEN = fixture_json("wt_login.json")["token"]


def test_unit_conversion() -> None:
    assert LBS_PER_MWH_TO_G_PER_KWH == 0.45359237
    assert lbs_per_mwh_to_g_per_kwh(1000.0) == pytest.approx(453.59237)
    # 1 lb/MWh = 453.59237 g / 1000 kWh
    assert lbs_per_mwh_to_g_per_kwh(1.0) == pytest.approx(453.59237 / 1000)


def test_five_minute_points_become_hourly_means() -> None:
    rows = parse_watttime_json(fixture_json("wt_historical_CAISO_NORTH.json"), "u", "CAISO_NORTH")
    assert [r.hour_utc for r in rows] == [datetime(2024, 6, 1, 0, tzinfo=UTC), datetime(2024, 6, 1, 1, tzinfo=UTC)]
    # values 900..911 then 912..923 lb/MWh
    assert rows[0].grams_per_kwh == pytest.approx(905.5 * 0.45359237)
    assert rows[1].grams_per_kwh == pytest.approx(917.5 * 0.45359237)
    assert all(r.signal == "marginal" and r.source == "watttime:co2_moer:historical" for r in rows)


def test_min_points_per_hour_leaves_thin_hours_as_gaps() -> None:
    payload = fixture_json("wt_historical_CAISO_NORTH.json")
    payload["data"] = payload["data"][:15]  # hour 1 has only 3 points
    rows = parse_watttime_json(payload, "u", "Z", min_points_per_hour=10)
    assert [r.hour_utc.hour for r in rows] == [0]


def test_parse_refuses_wrong_units_signal_and_values() -> None:
    payload = fixture_json("wt_historical_CAISO_NORTH.json")
    payload["meta"]["units"] = "kg_co2_per_mwh"
    with pytest.raises(GridDataError, match=r"field 'meta.units': unsupported units 'kg_co2_per_mwh'"):
        parse_watttime_json(payload, "u", "Z")
    payload = fixture_json("wt_historical_CAISO_NORTH.json")
    payload["meta"]["signal_type"] = "health_damage"
    with pytest.raises(GridDataError, match="response is 'health_damage', asked for 'co2_moer'"):
        parse_watttime_json(payload, "u", "Z")
    payload = fixture_json("wt_historical_CAISO_NORTH.json")
    payload["data"][3]["value"] = "high"
    with pytest.raises(GridDataError, match=r"field 'data\[3\].value': not a number"):
        parse_watttime_json(payload, "u", "Z")
    with pytest.raises(GridDataError, match="signal_type"):
        parse_watttime_json(payload, "u", "Z", signal_type="health_damage")


class WattTimeApi(ApiServer):
    """Login with basic auth, then bearer token on the data endpoints."""

    def __init__(self, user: str = "alice", password: str = "s3cret", expire_first_token: bool = False) -> None:
        self.logins = 0
        self.expire_first = expire_first_token
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

        def login(seen: Seen) -> tuple[int, Any]:
            if seen.headers.get("authorization") != expected:
                return 403, {"error": "Forbidden: invalid username or password"}
            self.logins += 1
            return 200, {"token": f"{TOKEN}-{self.logins}"}

        def bearer(route):
            def wrapped(seen: Seen) -> tuple[int, Any]:
                token = seen.headers.get("authorization", "")
                if not token.startswith(f"Bearer {TOKEN}-") or (self.expire_first and token.endswith("-1")):
                    return 401, {"error": "Unauthorized: token expired"}
                return route(seen)
            return wrapped

        def historical(seen: Seen) -> tuple[int, Any]:
            start = datetime.fromisoformat(seen.query["start"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(seen.query["end"].replace("Z", "+00:00"))
            payload = fixture_json("wt_historical_CAISO_NORTH.json")
            data, t = [], start
            while t <= end:  # end inclusive, like the real API
                data.append({"point_time": t.isoformat(), "value": 1000.0})
                t += timedelta(minutes=5)
            payload["data"] = data
            return 200, payload

        super().__init__({"/login": login, "/v3/historical": bearer(historical),
                          "/v3/forecast": bearer(lambda s: (200, fixture_json("wt_forecast_CAISO_NORTH.json")))})


def test_login_then_bearer_and_chunked_historical() -> None:
    with WattTimeApi() as api:
        client = WattTimeClient("alice", "s3cret", base_url=api.url, http=FAST)
        start = datetime(2024, 1, 1, tzinfo=UTC)
        rows = client.historical("CAISO_NORTH", start, start + timedelta(days=40))
        assert len(rows) == 40 * 24 and rows[0].grams_per_kwh == pytest.approx(453.59237)
        assert api.logins == 1
        calls = [r for r in api.requests if r.path == "/v3/historical"]
        assert [c.query["start"] for c in calls] == ["2024-01-01T00:00:00Z", "2024-01-31T00:00:00Z"]
        assert calls[0].query["signal_type"] == "co2_moer" and calls[0].query["region"] == "CAISO_NORTH"


def test_expired_token_logs_in_again_once() -> None:
    with WattTimeApi(expire_first_token=True) as api:
        client = WattTimeClient("alice", "s3cret", base_url=api.url, http=FAST)
        rows = client.historical("CAISO_NORTH", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 2, tzinfo=UTC))
        assert len(rows) == 2 and api.logins == 2


def test_bad_credentials_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATTTIME_USERNAME", "alice")
    monkeypatch.setenv("WATTTIME_PASSWORD", "wrong")
    with WattTimeApi() as api:
        client = WattTimeClient(base_url=api.url, http=FAST)
        with pytest.raises(GridDataError) as err:
            client.forecast("CAISO_NORTH")
        assert err.value.status == 403 and "/login" in err.value.source
        assert "check WATTTIME_USERNAME and WATTTIME_PASSWORD" in str(err.value)


def test_401_on_data_after_relogin_is_reported() -> None:
    routes = {"/login": lambda s: (200, {"token": "t"}), "/v3/forecast": lambda s: (401, {"error": "no access"})}
    with ApiServer(routes) as api:
        client = WattTimeClient("a", "b", base_url=api.url, http=FAST)
        with pytest.raises(GridDataError, match=r"authentication failed \(HTTP 401.*no access"):
            client.forecast("CAISO_NORTH")
        assert sum(r.path == "/login" for r in api.requests) == 2


def test_5xx_is_a_clear_error() -> None:
    routes = {"/login": lambda s: (200, {"token": "t"}), "/v3/historical": lambda s: (500, b"Internal Server Error")}
    with ApiServer(routes) as api:
        client = WattTimeClient("a", "b", base_url=api.url, http=JsonHttp(retries=1, backoff_s=0))
        with pytest.raises(GridDataError, match="server error after 2 attempt.*HTTP 500"):
            client.historical("CAISO_NORTH", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC))


def test_missing_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WATTTIME_USERNAME", "WATTTIME_USER", "WATTTIME_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(GridDataError, match="WattTime username/password not set"):
        WattTimeClient()


def test_forecast_and_load_intensity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATTTIME_USERNAME", "alice")
    monkeypatch.setenv("WATTTIME_PASSWORD", "s3cret")
    with WattTimeApi() as api:
        rows = WattTimeClient(base_url=api.url, http=FAST).forecast("CAISO_NORTH")
        assert [r.grams_per_kwh for r in rows] == pytest.approx([v * 0.45359237 for v in (800, 810, 820)])
        assert rows[0].source == "watttime:co2_moer:forecast" and rows[0].hour_utc.hour == 12
        start = datetime(2024, 2, 1, tzinfo=UTC)
        load = load_intensity({"source": "watttime", "region": "CAISO_NORTH", "zone": "US-CAL-CISO",
                               "base_url": api.url, "retries": 0}, start, start + timedelta(hours=6),
                              now=datetime(2024, 3, 1, tzinfo=UTC))
    assert len(load.rows) == 6 and {r.signal for r in load.rows} == {"marginal"}
    assert {r.zone for r in load.rows} == {"US-CAL-CISO"}
