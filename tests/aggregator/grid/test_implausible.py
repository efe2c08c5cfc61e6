"""Implausible grid hours by their own generation mix (docs/accounting.md 5.3): flagged, filled or refused."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import paths
from shared_data import EIA_DIR
from wattfleet.aggregator.grid import GridDataError, load_intensity, read_eia930
from wattfleet.aggregator.grid.implausible import implausible_reason

UTC = timezone.utc
PJM = paths.FIXTURES / "grid" / "eia930_PJM_2022-09-24_10-08.csv"
START, END = datetime(2022, 9, 25, tzinfo=UTC), datetime(2022, 10, 8, tzinfo=UTC)
# The five real hours (line in the fixture, hour start: EIA labels an hour by its end).
BAD = {175: datetime(2022, 10, 1, 4, tzinfo=UTC), 176: datetime(2022, 10, 1, 5, tzinfo=UTC),
       177: datetime(2022, 10, 1, 6, tzinfo=UTC), 178: datetime(2022, 10, 1, 7, tzinfo=UTC),
       198: datetime(2022, 10, 2, 3, tzinfo=UTC)}
HEADER = "timestamp,WND,SUN,WAT,OIL,NG,COL,NUC,OTH,avg_CI\n"


def test_pjm_has_exactly_its_five_low_generation_hours_flagged() -> None:
    parsed = read_eia930(PJM, "PJM")
    assert {b.line: b.hour_utc for b in parsed.implausible} == BAD
    assert all("below 0.1 x the zone's median" in b.reason for b in parsed.implausible)
    assert "total generation 287 MWh" in parsed.implausible[0].reason
    flagged = {r.hour_utc: r.grams_per_kwh + (r.upstream_grams_per_kwh or 0) for r in parsed.rows if r.implausible}
    assert sorted(flagged) == sorted(BAD.values())
    assert all(42.6 < g < 46.9 for g in flagged.values())  # 43-47 g/kWh: plausible alone, not for PJM


@pytest.mark.skipif(not (EIA_DIR / "CISO.csv").exists(), reason=f"shared EIA-930 data not found at {EIA_DIR}")
@pytest.mark.parametrize("zone", ["AZPS", "BPAT", "CISO", "MISO", "NYIS", "SOCO", "WAAT"])
def test_shared_files_have_no_implausible_hour(zone: str) -> None:
    assert read_eia930(EIA_DIR / f"{zone}.csv").implausible == []


def test_flag_keeps_the_hours_marked_and_noted() -> None:
    load = load_intensity({"source": "eia930", "path": str(PJM), "zone": "PJM"}, START, END)
    marked = {r.hour_utc for r in load.rows if r.implausible}
    assert marked == set(BAD.values()) and not any(r.filled for r in load.rows if r.implausible)
    assert sum("implausible" in n and "kept, flagged" in n for n in load.report.notes) == 5
    assert any(n.startswith(f"{PJM.name}:175: 2022-10-01T04:00:00+00:00 implausible") for n in load.report.notes)


def test_fill_treats_them_as_gaps() -> None:
    load = load_intensity({"source": "eia930", "path": str(PJM), "zone": "PJM", "implausible": "fill"},
                          START, END)
    by_hour = {r.hour_utc: r for r in load.rows}
    assert not any(r.implausible for r in load.rows)
    for hour in BAD.values():
        row = by_hour[hour]
        assert row.filled and row.fill_rule == "previous_day_same_hour"
        assert row.grams_per_kwh == by_hour[hour - timedelta(days=1)].grams_per_kwh
    assert sum("treated as a gap" in n for n in load.report.notes) == 5


def test_refuse_names_file_line_and_column() -> None:
    with pytest.raises(GridDataError) as err:
        load_intensity({"source": "eia930", "path": str(PJM), "zone": "PJM", "implausible": "refuse"}, START, END)
    e = err.value
    assert (Path(e.source).name, e.line, e.field) == (PJM.name, 175, "avg_CI")
    assert "5 such hour(s) in the window (lines 175, 176, 177, 178, 198)" in str(e)
    # a window without them loads
    ok = load_intensity({"source": "eia930", "path": str(PJM), "zone": "PJM", "implausible": "refuse"},
                        START, datetime(2022, 9, 30, tzinfo=UTC))
    assert len(ok.rows) == 5 * 24


def test_intensity_the_mix_cannot_produce_is_flagged(tmp_path: Path) -> None:
    path = tmp_path / "Z.csv"
    rows = [f"2022-01-01 {h:02d}:00:00+00:00,0,0,100,0,100,0,800,0,{g}\n"
            for h, g in enumerate([60, 61, 400, 62, 3, 60])]  # 10% gas, 90% carbon-free: 30..115 g/kWh
    path.write_text(HEADER + "".join(rows))
    parsed = read_eia930(path, "Z", timestamps="hour_start")
    assert {b.line: b.hour_utc.hour for b in parsed.implausible} == {4: 2, 6: 4}
    assert "intensity 400.0 g/kWh is outside 30..115 g/kWh that its mix allows" in parsed.implausible[0].reason


def test_reason_edge_cases() -> None:
    cols = ("NUC", "NG")
    assert implausible_reason(cols, [0.0, 0.0], 0.0, 100.0) == (
        "total generation 0 MWh is below 0.1 x the zone's median 100 MWh")
    assert implausible_reason(cols, [0.0, 0.0], 0.0, None) is None  # no mix, no median: nothing to judge
    assert implausible_reason(cols, [-5.0, 10.0], 500.0, 10.0) is None  # net consumption counts as 0
    assert implausible_reason(cols, [None, 10.0], 500.0, 10.0) is None  # a missing fuel counts as 0


def test_a_fill_copied_from_a_flagged_hour_keeps_the_flag(tmp_path: Path) -> None:
    """Under ``flag`` the value of a previous_day_same_hour fill is the flagged hour's, so is its flag."""
    lines = [ln.split(",")[0] + "," * 9 if ln.startswith("2022-10-02 05:00") else ln
             for ln in PJM.read_text().splitlines()]
    path = tmp_path / "PJM.csv"
    path.write_text("\n".join(lines) + "\n")
    load = load_intensity({"source": "eia930", "path": str(path), "zone": "PJM"}, START, END)
    row = {r.hour_utc: r for r in load.rows}[datetime(2022, 10, 2, 4, tzinfo=UTC)]
    assert row.filled and row.fill_rule == "previous_day_same_hour" and row.implausible is not None
    assert row.grams_per_kwh == {r.hour_utc: r for r in load.rows}[BAD[175]].grams_per_kwh
