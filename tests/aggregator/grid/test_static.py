"""Static annual table: documented values, recomputable EIA means, hourly expansion."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from paths import FIXTURES
from shared_data import EIA_DIR
from wattfleet.aggregator.grid import DEFAULT_TABLE, GridDataError, annual_factor, make_table, static_rows

UTC = timezone.utc


def test_domain_reference_values() -> None:
    assert {z: DEFAULT_TABLE[z].grams_per_kwh for z in ("FR", "SE", "PL", "US", "CA-QC")} == {
        "FR": 50.0, "SE": 22.0, "PL": 820.0, "US": 400.0, "CA-QC": 20.0}
    assert all(f.basis for f in DEFAULT_TABLE.values())


@pytest.mark.skipif(not EIA_DIR.exists(), reason=f"shared EIA-930 data not found at {EIA_DIR}")
@pytest.mark.parametrize("zone", ["AZPS", "BPAT", "CISO", "MISO", "NYIS", "SOCO", "WAAT"])
def test_eia_annual_means_recompute_from_files(zone: str) -> None:
    with (EIA_DIR / f"{zone}.csv").open(newline="") as fh:
        values = [float(r["avg_CI"]) for r in csv.DictReader(fh) if r["avg_CI"]]
    assert DEFAULT_TABLE[zone].grams_per_kwh == pytest.approx(sum(values) / len(values), abs=0.005)


def test_static_rows_hourly_and_flagged() -> None:
    start = datetime(2024, 1, 1, 0, 30, tzinfo=UTC)
    rows = static_rows("SE", start, start + timedelta(hours=3))
    assert [r.hour_utc.hour for r in rows] == [0, 1, 2, 3]  # start floored, end ceiled
    assert all(r.source == "static" and r.grams_per_kwh == 22.0 and not r.filled for r in rows)
    assert static_rows("XX", start, start + timedelta(hours=1), grams_per_kwh=123)[0].grams_per_kwh == 123.0


def test_unknown_zone_and_overrides() -> None:
    with pytest.raises(GridDataError, match="no annual factor for zone 'XX'"):
        annual_factor("XX")
    table = make_table({"XX": 310})
    assert annual_factor("XX", table).grams_per_kwh == 310.0 and annual_factor("FR", table).grams_per_kwh == 50.0
    with pytest.raises(GridDataError, match="must be a number >= 0"):
        make_table({"XX": -1})


def test_site_table_csv(tmp_path: Path) -> None:
    from wattfleet.aggregator.grid import load_static_table

    table = load_static_table(FIXTURES / "grid" / "static-intensity.csv")
    assert table["SITE-X"].grams_per_kwh == 310.5 and "supplier" in table["SITE-X"].basis
    assert set(table) == {"SE", "SITE-X"}
    bad = tmp_path / "t.csv"
    for body, line, field, text in [
        ("zone,grams_per_kwh\nSE,abc\n", 2, "grams_per_kwh", "not a number"),
        ("zone,grams_per_kwh\nSE,-1\n", 2, "grams_per_kwh", ">= 0"),
        ("zone,grams_per_kwh\nSE,1\n#x\nSE,2\n", 4, "zone", "listed twice, first on line 2"),
        ("zone,value\nSE,1\n", 1, "grams_per_kwh", "missing column"),
    ]:
        bad.write_text(body)
        with pytest.raises(GridDataError) as err:
            load_static_table(bad)
        assert (err.value.line, err.value.field) == (line, field) and text in str(err.value)
