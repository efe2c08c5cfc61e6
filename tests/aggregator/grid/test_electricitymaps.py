"""Electricity Maps: CSV exports (both header generations) and the v3 API client."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from fixtures.grid_api import FIXTURES, ApiServer, Seen, fixture_json
from wattfleet.aggregator.grid import (
    ElectricityMapsClient,
    GridDataError,
    JsonHttp,
    load_electricitymaps_csv,
    load_intensity,
    parse_carbon_intensity_json,
)

UTC = timezone.utc
FAST = JsonHttp(timeout_s=5.0, retries=0, backoff_s=0.0)


def test_csv_old_header_direct_and_lifecycle() -> None:
    rows = load_electricitymaps_csv(FIXTURES / "em_FR_2022_hourly_excerpt.csv")
    assert [r.hour_utc.hour for r in rows] == [0, 1, 3]  # 02:00 has no values: a gap, not a row
    assert rows[0].zone == "FR" and rows[0].grams_per_kwh == 52.34 and rows[0].cfe_ratio == pytest.approx(0.9218)
    assert rows[0].source == "electricitymaps:direct" and rows[2].source == "electricitymaps:direct:estimated"
    lca = load_electricitymaps_csv(FIXTURES / "em_FR_2022_hourly_excerpt.csv", emission_factor="lifecycle")
    assert lca[0].grams_per_kwh == 79.11 and lca[0].source == "electricitymaps:lifecycle"


def test_csv_new_header() -> None:
    rows = load_electricitymaps_csv(FIXTURES / "em_DE_2024_hourly_excerpt.csv", emission_factor="lifecycle")
    assert [(r.zone, r.hour_utc, r.grams_per_kwh) for r in rows] == [
        ("DE", datetime(2024, 1, 1, 0, tzinfo=UTC), 255.9), ("DE", datetime(2024, 1, 1, 1, tzinfo=UTC), 250.1)]
    assert rows[0].cfe_ratio == pytest.approx(0.613)


OLD_HEADER = (FIXTURES / "em_FR_2022_hourly_excerpt.csv").read_text(encoding="utf-8").splitlines()[0]


@pytest.mark.parametrize(
    ("lines", "line", "field", "text"),
    [
        (["2022-01-01 00:00:00,France,France,FR,abc,1,1,1,x,false,"], 2,
         "Carbon Intensity gCO₂eq/kWh (direct)", "not a number: 'abc'"),
        (["2022-01-01 00:00:00,France,France,FR,-3,1,1,1,x,false,"], 2,
         "Carbon Intensity gCO₂eq/kWh (direct)", "negative intensity"),
        (["2022-01-01 00:00:00,France,France,FR,3,1,101,1,x,false,"], 2, "Low Carbon Percentage", "out of 0..100"),
        (["2022-01-01 00:00:00,France,France,FR,3,1,1,1,x,false,", "yesterday,France,France,FR,3,1,1,1,x,false,"], 3,
         "Datetime (UTC)", "not a timestamp"),
        (["2022-01-01 00:00:00,France,France,FR,3,1,1,1,x,false,",
          "2022-01-02 00:00:00,France,France,FR,3,1,1,1,x,false,"],
         None, "Datetime (UTC)", "not an hourly export"),
    ],
)
def test_csv_malformed(tmp_path: Path, lines: list[str], line: int | None, field: str, text: str) -> None:
    path = tmp_path / "FR.csv"
    path.write_text("\n".join([OLD_HEADER, *lines]) + "\n", encoding="utf-8")
    with pytest.raises(GridDataError) as err:
        load_electricitymaps_csv(path)
    assert (err.value.source, err.value.line, err.value.field) == (str(path), line, field)
    assert text in str(err.value)


def test_csv_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "X.csv"
    path.write_text("Datetime (UTC),Zone Id\n2022-01-01 00:00:00,FR\n")
    with pytest.raises(GridDataError, match=r"X.csv:1: field 'carbon intensity \(direct\)': missing column"):
        load_electricitymaps_csv(path)


def test_parse_history_fixture() -> None:
    rows = parse_carbon_intensity_json(fixture_json("em_history_DE.json"), "http://x")
    assert len(rows) == 23  # one null carbonIntensity is a gap
    assert datetime(2024, 6, 1, 13, tzinfo=UTC) not in {r.hour_utc for r in rows}
    assert rows[0].grams_per_kwh == 312 and rows[0].zone == "DE" and rows[0].cfe_ratio is None
    assert rows[-1].source == "electricitymaps:direct:estimated"


def test_parse_rejects_other_factor_and_bad_values() -> None:
    with pytest.raises(GridDataError, match=r"history\[0\].emissionFactorType.*'lifecycle', asked for 'direct'"):
        parse_carbon_intensity_json({"zone": "DE", "history": [
            {"carbonIntensity": 1, "datetime": "2024-01-01T00:00:00.000Z", "emissionFactorType": "lifecycle"}]}, "u")
    with pytest.raises(GridDataError, match=r"u: field 'history\[0\].carbonIntensity': not a number: '12'"):
        parse_carbon_intensity_json({"zone": "DE", "history": [
            {"carbonIntensity": "12", "datetime": "2024-01-01T00:00:00.000Z"}]}, "u")
    with pytest.raises(GridDataError, match=r"field 'data\[0\].datetime': not a timestamp"):
        parse_carbon_intensity_json({"zone": "DE", "data": [{"carbonIntensity": 1, "datetime": "soon"}]}, "u")
    with pytest.raises(GridDataError, match="no 'history', 'data' or 'carbonIntensity'"):
        parse_carbon_intensity_json({"zone": "DE"}, "u")


def _past_range(seen: Seen) -> tuple[int, Any]:
    start = datetime.fromisoformat(seen.query["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(seen.query["end"].replace("Z", "+00:00"))
    data, t = [], start
    while t <= end:  # like the API, the end hour is included
        data.append({"zone": seen.query["zone"], "carbonIntensity": 100 + t.hour,
                     "datetime": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "updatedAt": "2024-06-02T00:00:00.000Z",
                     "emissionFactorType": seen.query["emissionFactorType"], "isEstimated": False,
                     "estimationMethod": None})
        t += timedelta(hours=1)
    return 200, {"zone": seen.query["zone"], "temporalGranularity": "hourly", "data": data}


def _authed(route):
    def wrapped(seen: Seen) -> tuple[int, Any]:
        if seen.headers.get("auth-token") != "em-secret":
            return 401, {"status": "error", "message": "Invalid authentication token"}
        return route(seen)
    return wrapped


def em_server() -> ApiServer:
    return ApiServer({
        "/v3/carbon-intensity/history": _authed(lambda s: (200, fixture_json("em_history_DE.json"))),
        "/v3/carbon-intensity/latest": _authed(lambda s: (200, fixture_json("em_latest_DE.json"))),
        "/v3/carbon-intensity/past-range": _authed(_past_range),
    })


def test_client_history_latest_with_token_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", "em-secret")
    with em_server() as api:
        client = ElectricityMapsClient(base_url=api.url, http=FAST)
        assert len(client.history("DE")) == 23
        latest = client.latest("DE")
        assert [(r.hour_utc, r.grams_per_kwh) for r in latest] == [(datetime(2024, 6, 2, 10, tzinfo=UTC), 287)]
        assert api.requests[0].query == {"zone": "DE", "emissionFactorType": "direct"}
        assert api.requests[0].headers["auth-token"] == "em-secret"


def test_client_past_range_is_chunked_to_ten_days() -> None:
    with em_server() as api:
        client = ElectricityMapsClient(token="em-secret", base_url=api.url, http=FAST)
        start = datetime(2024, 5, 1, tzinfo=UTC)
        rows = client.past_range("FR", start, start + timedelta(days=25))
        assert len(rows) == 25 * 24 and rows[0].hour_utc == start
        assert [r.query["start"] for r in api.requests] == [
            "2024-05-01T00:00:00Z", "2024-05-11T00:00:00Z", "2024-05-21T00:00:00Z"]


def test_client_401_is_clear() -> None:
    with em_server() as api:
        client = ElectricityMapsClient(token="wrong", base_url=api.url, http=FAST)
        with pytest.raises(GridDataError) as err:
            client.history("DE")
        assert err.value.status == 401
        assert "authentication failed" in str(err.value) and "ELECTRICITYMAPS_TOKEN" in str(err.value)
        assert "/v3/carbon-intensity/history?zone=DE" in str(err.value)


def test_client_5xx_is_clear() -> None:
    with ApiServer({"/v3/carbon-intensity/history": lambda s: (502, b"Bad Gateway")}) as api:
        client = ElectricityMapsClient(token="t", base_url=api.url, http=JsonHttp(retries=1, backoff_s=0))
        with pytest.raises(GridDataError, match="server error after 2 attempt.*HTTP 502: Bad Gateway"):
            client.history("DE")


def test_missing_token_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELECTRICITYMAPS_TOKEN", raising=False)
    with pytest.raises(GridDataError, match="env:ELECTRICITYMAPS_TOKEN: Electricity Maps API token not set"):
        ElectricityMapsClient()


def test_load_intensity_api_and_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", "em-secret")
    start = datetime(2024, 5, 3, tzinfo=UTC)
    with em_server() as api:
        load = load_intensity({"source": "electricitymaps", "zone": "FR", "base_url": api.url, "retries": 0},
                              start, start + timedelta(hours=48), now=datetime(2024, 6, 1, tzinfo=UTC))
    assert len(load.rows) == 48 and load.report.complete and not load.report.missing
    # neighbours a day either side were fetched for the fill rules
    assert api.requests[0].query["start"] == "2024-05-02T00:00:00Z"
    assert api.requests[0].query["end"] == "2024-05-06T00:00:00Z"
    csv_load = load_intensity({"source": "electricitymaps", "path": str(FIXTURES / "em_FR_2022_hourly_excerpt.csv"),
                               "fill": ["linear"]},
                              datetime(2022, 1, 1, tzinfo=UTC), datetime(2022, 1, 1, 4, tzinfo=UTC))
    assert [r.filled for r in csv_load.rows] == [False, False, True, False]
    assert csv_load.rows[2].grams_per_kwh == pytest.approx((50.01 + 48.77) / 2)
