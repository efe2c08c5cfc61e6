"""EIA-930 CSV loader: real 2022 files with their warts, and malformed input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import paths
from shared_data import EIA_DIR
from wattfleet.aggregator.grid import GridDataError, load_eia930, load_intensity, read_eia930

FIXTURES = paths.FIXTURES / "grid"

UTC = timezone.utc
Y2022 = datetime(2022, 1, 1, tzinfo=UTC)
Y2023 = datetime(2023, 1, 1, tzinfo=UTC)

needs_shared = pytest.mark.skipif(not (EIA_DIR / "CISO.csv").exists(),
                                  reason=f"shared EIA-930 data not found at {EIA_DIR} (set WATTFLEET_SHARED_DATA)")


@needs_shared
def test_real_ciso_year_is_8760_hours_after_filling() -> None:
    load = load_intensity({"source": "eia930", "path": str(EIA_DIR / "CISO.csv")}, Y2022, Y2023)
    assert len(load.rows) == 8760
    hours = [r.hour_utc for r in load.rows]
    assert hours == [Y2022 + timedelta(hours=i) for i in range(8760)]
    assert all(r.zone == "CISO" and r.signal == "average" for r in load.rows)
    # the known empty row (labelled 10:00, the end of its hour: EIA's convention), filled from the day before
    known = datetime(2022, 1, 5, 9, tzinfo=UTC)
    row = load.rows[hours.index(known)]
    assert row.filled and row.fill_rule == "previous_day_same_hour"
    assert row.grams_per_kwh == load.rows[hours.index(known - timedelta(days=1))].grams_per_kwh
    # ... and the year's last hour, whose end (2023-01-01 00:00) is in the next year's file
    assert load.report.missing == [known, datetime(2022, 5, 17, 17, tzinfo=UTC), datetime(2022, 6, 13, 17, tzinfo=UTC),
                                   datetime(2022, 12, 31, 23, tzinfo=UTC)]
    assert sum(r.filled for r in load.rows) == 4
    assert any("CISO.csv:108" in n and "empty row" in n for n in load.report.notes)


@needs_shared
def test_real_ciso_empty_rows_yield_no_row_but_are_listed() -> None:
    parsed = read_eia930(EIA_DIR / "CISO.csv")
    assert len(parsed.rows) == 8757
    # keyed by the hour's start: the label is the hour's end
    assert [(e.line, e.hour_utc.isoformat()) for e in parsed.empty] == [
        (108, "2022-01-05T09:00:00+00:00"), (3284, "2022-05-17T17:00:00+00:00"), (3932, "2022-06-13T17:00:00+00:00")]
    assert read_eia930(EIA_DIR / "CISO.csv", timestamps="hour_start").empty[0].hour_utc == datetime(2022, 1, 5, 10,
                                                                                                    tzinfo=UTC)
    first = parsed.rows[0]
    # (WND+SUN+WAT+NUC) / all eight fuels, from the first data line
    assert first.cfe_ratio == pytest.approx((3130 + 1367 + 2304 + 2265)
                                            / (3130 + 1367 + 2304 + 44 + 6764 + 19 + 2265 + 189))
    # avg_CI is life-cycle (basis: lifecycle, the default): the stored intensity is the direct part, from the
    # mix by hand: (OIL 44 x 406 + NG 6764 x 370 + COL 19 x 760) / 16,082 MWh = 2,534,984 / 16,082 g/kWh
    assert first.grams_per_kwh == pytest.approx(2_534_984 / 16_082, rel=1e-12)
    assert first.basis == "direct"
    assert first.upstream_grams_per_kwh is not None
    assert first.grams_per_kwh + first.upstream_grams_per_kwh == pytest.approx(222.29592090536002, rel=1e-12)


@needs_shared
def test_real_miso_partial_rows_are_gaps_not_values() -> None:
    parsed = read_eia930(EIA_DIR / "MISO.csv")
    assert [(e.line, e.present_columns) for e in parsed.empty] == [(3768, ("OIL",)), (3838, ("OIL",)), (3839, ("OIL",))]


@needs_shared
def test_real_waat_unnamed_timestamp_header_and_no_final_newline() -> None:
    # wc -l says 8760 lines because the last line has no newline: it is 8760 data rows.
    rows = load_eia930(EIA_DIR / "WAAT.csv")
    assert len(rows) == 8760 and rows[0].zone == "WAAT"


@needs_shared
def test_file_with_8759_rows_has_its_missing_hour_found(tmp_path: Path) -> None:
    lines = (EIA_DIR / "CISO.csv").read_text().splitlines(keepends=True)
    dropped = lines.pop(1 + 24 * 40 + 7)
    assert dropped.startswith("2022-02-10 07:00:00")
    short = tmp_path / "CISO.csv"
    short.write_text("".join(lines))
    assert len(lines) - 1 == 8759
    gone = datetime(2022, 2, 10, 6, tzinfo=UTC)  # the hour that ends at 07:00
    load = load_intensity({"source": "eia930", "path": str(short)}, Y2022, Y2023)
    assert gone in load.report.missing and len(load.report.missing) == 5  # + 3 empty rows + the year's last hour
    assert [f.rule for f in load.report.filled if f.hour_utc == gone] == ["previous_day_same_hour"]
    assert len(load.rows) == 8760
    # with a rule that cannot fill, the missing hours stop the load instead of vanishing
    with pytest.raises(GridDataError, match=r"5 of 8760 hour\(s\) missing in zone NOWHERE"):
        load_intensity({"source": "eia930", "path": str(short), "zone": "NOWHERE", "fill": ["static_annual"]},
                       Y2022, Y2023)
    left = load_intensity({"source": "eia930", "path": str(short), "fill": ["none"]}, Y2022, Y2023)
    assert len(left.rows) == 8755 and gone in left.report.unfilled and not left.report.complete


def test_excerpt_fixture_fills_the_empty_hour() -> None:
    path = FIXTURES / "eia930_CISO_2022-01-04_05.csv"
    start, end = datetime(2022, 1, 5, tzinfo=UTC), datetime(2022, 1, 6, tzinfo=UTC)
    load = load_intensity({"source": "eia930", "path": str(path), "zone": "CISO"}, start, end)
    assert len(load.rows) == 24
    filled = [r for r in load.rows if r.filled]
    # the empty row labelled 10:00 is the hour from 09:00; the day's last hour ends after the excerpt
    assert [r.hour_utc.hour for r in filled] == [9, 23]
    assert load.report.filled[0].basis == "observed 2022-01-04T09:00:00+00:00"


def test_zone_defaults_to_file_stem_and_can_be_given() -> None:
    path = FIXTURES / "eia930_CISO_2022-01-04_05.csv"
    assert load_eia930(path)[0].zone == "eia930_CISO_2022-01-04_05"
    assert load_eia930(path, zone="CISO")[0].zone == "CISO"


@pytest.mark.parametrize(
    ("name", "line", "column", "text"),
    [
        ("eia930_bad_number.csv", 4, "NG", "not a number: 'n/a'"),
        ("eia930_negative_intensity.csv", 3, "avg_CI", "negative intensity"),
        ("eia930_bad_timestamp.csv", 5, "timestamp", "not a timestamp"),
        ("eia930_missing_column.csv", 1, "NUC", "missing column"),
    ],
)
def test_malformed_fixture_names_file_line_column(name: str, line: int, column: str, text: str) -> None:
    with pytest.raises(GridDataError) as err:
        load_eia930(FIXTURES / name)
    e = err.value
    assert (Path(e.source).name, e.line, e.field) == (name, line, column)
    assert text in str(e) and f"{name}:{line}: field '{column}'" in str(e)


HEADER = "timestamp,WND,SUN,WAT,OIL,NG,COL,NUC,OTH,avg_CI\n"
GOOD = "2022-01-01 00:00:00+00:00,1,1,1,1,1,1,1,1,100\n"


@pytest.mark.parametrize(
    ("body", "line", "field", "text"),
    [
        (GOOD + "2022-01-01 01:00:00+00:00,1,1,1,1,1,1,1,1,nan\n", 3, "avg_CI", "not a finite number"),
        (GOOD + "2022-01-01 01:00:00+00:00,1,1,1,1,1,1,1,inf,100\n", 3, "OTH", "not a finite number"),
        (GOOD + "2022-01-01 01:30:00+00:00,1,1,1,1,1,1,1,1,100\n", 3, "timestamp", "not on the hour"),
        (GOOD + GOOD, 3, "timestamp", "duplicate hour"),
        (GOOD + "2022-01-01 01:00:00+00:00,1,1,1\n", 3, None, "expected 10 columns, found 4"),
    ],
)
def test_malformed_values(tmp_path: Path, body: str, line: int, field: str | None, text: str) -> None:
    path = tmp_path / "X.csv"
    path.write_text(HEADER + body)
    with pytest.raises(GridDataError) as err:
        load_eia930(path)
    assert (err.value.line, err.value.field) == (line, field)
    assert text in str(err.value) and str(path) in str(err.value)


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(GridDataError, match="cannot open"):
        load_eia930(tmp_path / "nope.csv")
    (tmp_path / "E.csv").write_text("")
    with pytest.raises(GridDataError, match="empty file"):
        load_eia930(tmp_path / "E.csv")


def test_cfe_ratio_edge_cases(tmp_path: Path) -> None:
    path = tmp_path / "Z.csv"
    path.write_text(HEADER
                    + "2022-01-01 00:00:00+00:00,10,0,0,0,30,0,0,-5,300\n"   # negative OTH counts as 0
                    + "2022-01-01 01:00:00+00:00,0,0,0,0,0,0,0,0,300\n"      # no generation: unknown
                    + "2022-01-01 02:00:00+00:00,,0,0,0,5,0,0,0,300\n"       # a fuel missing: unknown
                    + "2022-01-01 03:00:00-05:00,1,1,1,0,0,0,1,0,0\n")       # offset converted to UTC
    rows = load_eia930(path)  # hour-ending labels: 08:00 UTC ends the hour from 07:00
    assert rows[0].cfe_ratio == pytest.approx(0.25)
    assert rows[1].cfe_ratio is None and rows[2].cfe_ratio is None
    assert rows[3].hour_utc == datetime(2022, 1, 1, 7, tzinfo=UTC) and rows[3].cfe_ratio == 1.0
