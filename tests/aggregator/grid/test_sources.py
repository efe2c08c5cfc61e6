"""load_intensity: spec validation, static source, completeness guarantee."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fixtures.grid_api import FIXTURES
from wattfleet.aggregator.grid import GridDataError, load_intensity

UTC = timezone.utc
T0 = datetime(2022, 1, 5, tzinfo=UTC)
EXCERPT = "eia930_CISO_2022-01-04_05.csv"


def test_static_source_expands_hourly() -> None:
    load = load_intensity({"source": "static", "zone": "CA-QC"}, T0, T0 + timedelta(hours=3))
    assert [(r.grams_per_kwh, r.source, r.filled) for r in load.rows] == [(20.0, "static", False)] * 3
    assert load.report.complete and load.report.missing == []
    load = load_intensity({"source": "static", "zone": "site-x", "grams_per_kwh": 333}, T0, T0 + timedelta(hours=1))
    assert load.rows[0].grams_per_kwh == 333.0


def test_relative_path_and_window_rounding() -> None:
    load = load_intensity({"source": "eia930", "path": EXCERPT, "zone": "CISO", "timestamps": "hour_start"},
                          T0 + timedelta(minutes=30), T0 + timedelta(hours=11, minutes=5), base_dir=FIXTURES)
    assert [r.hour_utc.hour for r in load.rows] == list(range(12))  # floored start, ceiled end
    assert load.rows[10].filled


def test_fallthrough_chain_in_spec(tmp_path: Path) -> None:
    # empty 2022-01-04 10:00 too: 2022-01-05 10:00 then has no day before and linear takes over
    lines = [ln if not ln.startswith("2022-01-04 10:00") else "2022-01-04 10:00:00+00:00" + "," * 9
             for ln in (FIXTURES / EXCERPT).read_text().splitlines()]
    (tmp_path / "CISO.csv").write_text("\n".join(lines) + "\n")
    spec = {"source": "eia930", "path": str(tmp_path / "CISO.csv"), "fill": ["previous_day_same_hour", "linear"],
            "timestamps": "hour_start"}
    load = load_intensity(spec, T0, T0 + timedelta(days=1))
    (fill,) = load.report.filled
    assert fill.rule == "linear" and fill.fell_through[0].startswith("previous_day_same_hour: no observed value")
    assert load.rows[10].fill_rule == "linear"
    assert load.rows[10].grams_per_kwh == pytest.approx((load.rows[9].grams_per_kwh + load.rows[11].grams_per_kwh) / 2)


def test_unfillable_raises_naming_file_and_hour() -> None:
    spec = {"source": "eia930", "path": str(FIXTURES / EXCERPT), "zone": "CISO", "fill": ["linear"],
            "timestamps": "hour_start"}
    with pytest.raises(GridDataError) as err:
        load_intensity(spec, T0, T0 + timedelta(days=2))  # the whole of 2022-01-06 is beyond the file
    msg = str(err.value)
    assert EXCERPT in err.value.source and "24 of 48 hour(s) missing in zone CISO" in msg
    assert "first 2022-01-06T00:00:00+00:00: linear: no observed hour on both sides" in msg
    load = load_intensity({**spec, "fill": ["linear", "none"]}, T0, T0 + timedelta(days=2))
    assert len(load.rows) == 24 and len(load.report.unfilled) == 24


@pytest.mark.parametrize(
    ("spec", "field", "text"),
    [
        ({"source": "csv"}, "source", "unknown source 'csv'"),
        ({"source": "eia930"}, "path", "required for source 'eia930'"),
        ({"source": "eia930", "path": "x", "paht": "y"}, "paht", "unknown key(s)"),
        ({"source": "static", "zone": "FR", "fill": ["guess"]}, "fill[0]", "unknown fill rule"),
        ({"source": "watttime", "region": "R", "signal_type": "health_damage"}, "signal_type", "must be one of"),
        ({"source": "electricitymaps"}, "zone", "required"),
        ({"source": "ukcarbon", "retries": "3"}, "retries", "must be an integer >= 0"),
        ({"source": "ukcarbon", "timeout_s": -1}, "timeout_s", "must be a number >= 0"),
        ({"source": "static", "zone": "FR", "static_table": {"FR": "fifty"}}, "FR", "must be a number"),
    ],
)
def test_bad_specs(spec: dict, field: str, text: str) -> None:
    with pytest.raises(GridDataError) as err:
        load_intensity(spec, T0, T0 + timedelta(hours=1))
    assert err.value.field == field and text in str(err.value)


def test_bad_windows() -> None:
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        load_intensity({"source": "static", "zone": "FR"}, datetime(2022, 1, 1), datetime(2022, 1, 2, tzinfo=UTC))
    with pytest.raises(GridDataError, match="is not after start"):
        load_intensity({"source": "static", "zone": "FR"}, T0, T0)
    with pytest.raises(GridDataError, match="expected a mapping"):
        load_intensity(["static"], T0, T0 + timedelta(hours=1))  # type: ignore[arg-type]


def test_static_source_with_site_table_and_zone_check() -> None:
    from wattfleet.aggregator.grid import zone_check

    spec = {"source": "static", "path": "static-intensity.csv", "zone": "SITE-X"}
    load = load_intensity(spec, T0, T0 + timedelta(hours=2), base_dir=FIXTURES)
    assert [r.grams_per_kwh for r in load.rows] == [310.5, 310.5]
    with pytest.raises(GridDataError, match="no annual factor for zone 'FR'"):  # own table: no default fallback
        load_intensity({**spec, "zone": "FR"}, T0, T0 + timedelta(hours=1), base_dir=FIXTURES)
    assert zone_check(spec, "SITE-X", FIXTURES) is None
    assert "has no annual factor for zone 'FR'" in (zone_check(spec, "FR", FIXTURES) or "")
    assert zone_check({"source": "static"}, "PL") is None
    assert "default static table has no annual factor" in (zone_check({"source": "static"}, "XX") or "")
    assert "grid file not found" in (zone_check({"source": "eia930", "path": "nope.csv"}, "CISO", FIXTURES) or "")
    assert zone_check({"source": "eia930", "path": EXCERPT}, "CISO", FIXTURES) is None
    assert zone_check({"source": "watttime", "region": "CAISO_NORTH"}, "CAISO_NORTH") is None
    assert "unknown grid source" in (zone_check({"source": "csv"}, "X") or "")
    assert "cannot open" in (zone_check({"source": "static", "path": "missing.csv"}, "SE", FIXTURES) or "")
