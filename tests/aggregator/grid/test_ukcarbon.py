"""UK Carbon Intensity API: half-hours to hours, actual preferred over forecast."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from fixtures.grid_api import ApiServer, Seen, fixture_json
from wattfleet.aggregator.grid import (
    GridDataError,
    JsonHttp,
    UkCarbonClient,
    load_intensity,
    parse_national_json,
    parse_regional_json,
)

UTC = timezone.utc
FAST = JsonHttp(timeout_s=5.0, retries=0, backoff_s=0.0)


def test_half_hours_average_and_actual_preferred() -> None:
    rows = parse_national_json(fixture_json("uk_national.json"), "u")
    assert [(r.hour_utc.hour, r.grams_per_kwh, r.source) for r in rows] == [
        (12, 265.0, "ukcarbon:actual"),                 # (263 + 267) / 2
        (13, 275.5, "ukcarbon:actual+forecast"),        # 271 actual, 280 forecast (actual is null)
    ]
    assert rows[0].zone == "GB" and rows[0].cfe_ratio is None and rows[0].signal == "average"


def test_single_half_and_empty_halves() -> None:
    payload = {"data": [
        {"from": "2024-01-01T00:00Z", "to": "2024-01-01T00:30Z", "intensity": {"forecast": 100, "actual": None}},
        {"from": "2024-01-01T00:30Z", "to": "2024-01-01T01:00Z", "intensity": {"forecast": None, "actual": None}},
        {"from": "2024-01-01T01:00Z", "to": "2024-01-01T01:30Z", "intensity": {"forecast": None, "actual": None}},
    ]}
    rows = parse_national_json(payload, "u")
    assert [(r.hour_utc.hour, r.grams_per_kwh, r.source) for r in rows] == [(0, 100.0, "ukcarbon:forecast:half")]


def test_regional_forecast_with_generation_mix() -> None:
    rows = parse_regional_json(fixture_json("uk_regional_13.json"), "u")
    assert [r.zone for r in rows] == ["GB-13", "GB-13"]
    assert rows[0].grams_per_kwh == 185.0 and rows[0].source == "ukcarbon:forecast"
    # nuclear + wind + solar + hydro over the whole mix, mean of the two halves
    assert rows[0].cfe_ratio == pytest.approx(((6.8 + 42.8 + 1.2) + (6.4 + 38.8 + 1.2)) / 2 / 100, abs=1e-3)


@pytest.mark.parametrize(
    ("item", "field", "text"),
    [
        ({"from": "2024-01-01T00:10Z", "intensity": {"forecast": 1}}, "data[0].from", "not a half-hour boundary"),
        ({"from": "noon", "intensity": {"forecast": 1}}, "data[0].from", "not a timestamp"),
        ({"from": "2024-01-01T00:00Z", "intensity": {"forecast": -4}}, "data[0].intensity.forecast", "negative"),
        ({"from": "2024-01-01T00:00Z", "intensity": {"actual": "x"}}, "data[0].intensity.actual", "not a number"),
        ({"from": "2024-01-01T00:00Z"}, "data[0].intensity", "missing"),
    ],
)
def test_malformed_json(item: dict, field: str, text: str) -> None:
    with pytest.raises(GridDataError) as err:
        parse_national_json({"data": [item]}, "http://uk/intensity")
    assert err.value.field == field and text in str(err.value) and err.value.source == "http://uk/intensity"


def _national(seen: Seen) -> tuple[int, Any]:
    _, _, frm, to = seen.path.split("/")
    start = datetime.fromisoformat(frm.replace("Z", "+00:00"))
    end = datetime.fromisoformat(to.replace("Z", "+00:00"))
    # like the real API: the half-hour that contains 'from' first, through the one ending at 'to'
    t = start.replace(minute=0 if start.minute < 30 else 30)
    data = []
    while t < end:
        data.append({"from": t.strftime("%Y-%m-%dT%H:%MZ"),
                     "to": (t + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%MZ"),
                     "intensity": {"forecast": 200, "actual": 190 if t.minute == 0 else 210, "index": "moderate"}})
        t += timedelta(minutes=30)
    return 200, {"data": data}


def test_client_windows_and_from_shift() -> None:
    with ApiServer({"/intensity/*": _national}) as api:
        client = UkCarbonClient(base_url=api.url, http=FAST)
        start = datetime(2023, 12, 20, tzinfo=UTC)
        rows = client.national(start, start + timedelta(days=20))
        assert len(rows) == 20 * 24 and all(r.grams_per_kwh == 200.0 for r in rows)
        assert [r.path for r in api.requests] == [
            "/intensity/2023-12-20T00:01Z/2024-01-01T00:00Z",   # never across new year
            "/intensity/2024-01-01T00:01Z/2024-01-09T00:00Z",
        ]


def test_client_regional_paths() -> None:
    with ApiServer({"/regional/intensity/*": lambda s: (200, fixture_json("uk_regional_13.json"))}) as api:
        client = UkCarbonClient(base_url=api.url, http=FAST)
        rows = client.regional(datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 1, 2, tzinfo=UTC), regionid=13)
        assert len(rows) == 2
        client.regional(datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 1, 2, tzinfo=UTC), postcode="RG10",
                        zone="GB-RG10")
        assert api.requests[0].path.endswith("/regionid/13") and api.requests[1].path.endswith("/postcode/RG10")
    with pytest.raises(GridDataError, match="exactly one of regionid or postcode"):
        client.regional(datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 2, tzinfo=UTC))


def test_client_5xx_and_4xx_are_clear() -> None:
    routes = {"/intensity/*": lambda s: (500, {"error": {"code": "500 Internal Server Error", "message": "oops"}}),
              "/regional/intensity/*": lambda s: (400, {"error": {"code": "400 Bad Request",
                                                                  "message": "Please enter a valid postcode"}})}
    with ApiServer(routes) as api:
        client = UkCarbonClient(base_url=api.url, http=FAST)
        with pytest.raises(GridDataError, match="server error after 1 attempt.*HTTP 500"):
            client.national(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC))
        with pytest.raises(GridDataError, match="HTTP 400.*valid postcode"):
            client.regional(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC), postcode="ZZ")


def test_load_intensity_national() -> None:
    with ApiServer({"/intensity/*": _national}) as api:
        start = datetime(2024, 3, 10, 5, tzinfo=UTC)
        load = load_intensity({"source": "ukcarbon", "base_url": api.url, "retries": 0}, start,
                              start + timedelta(hours=5), now=start + timedelta(hours=2))
    assert [r.zone for r in load.rows] == ["GB"] * 5 and load.report.complete
    # neighbours fetched from a day before; after 'end' only up to 'now' (here: not past end)
    assert api.requests[0].path == "/intensity/2024-03-09T05:01Z/2024-03-10T10:00Z"
