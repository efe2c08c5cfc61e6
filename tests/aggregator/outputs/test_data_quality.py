"""Grid data quality per zone (docs/accounting.md 5.4): filled and implausible hours, the rule, and what rests
on them, from a real EIA-930 excerpt through ingest, facts and the report's tables."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import paths
from fixtures.agg.pipeline import put_gpu, write_config
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.ingest.embedded import EmbeddedSource
from wattfleet.aggregator.ingest.run import ingest
from wattfleet.aggregator.outputs.documents import grid_quality_section, section_markdown
from wattfleet.aggregator.outputs.queries import month_bounds, run_report_queries
from wattfleet.aggregator.store.database import open_store

PJM = paths.FIXTURES / "grid" / "eia930_PJM_2022-09-24_10-08.csv"
T0, HOURS = datetime(2022, 10, 1), 48
NOW = datetime(2022, 12, 1, tzinfo=timezone.utc)
PUE, WATTS = 1.5, 1000.0
EMPTIED = "2022-10-02 12:00"  # its label: the hour from 11:00 becomes a gap, filled from the day before


def site(implausible: str = "flag") -> str:
    return f"""\
- name: p1
  zone: PJM
  grid: {{source: eia930, path: PJM.csv, fill: [previous_day_same_hour], implausible: {implausible}}}
  pue: {PUE}
  wue_liters_per_kwh: 1.0
  nodes: ["a-*"]
"""


def gappy_pjm(tmp_path: Path) -> None:
    lines = PJM.read_text().splitlines()
    out = [ln.split(",")[0] + "," * 9 if ln.startswith(EMPTIED) else ln for ln in lines]
    (tmp_path / "PJM.csv").write_text("\n".join(out) + "\n")


def test_zone_table_names_the_hours_the_rule_and_what_rests_on_them(tmp_path: Path) -> None:
    gappy_pjm(tmp_path)
    cfg = load_facility(write_config(tmp_path, site()))
    con = open_store(tmp_path / "wf.duckdb")
    put_gpu(con, "a-1", T0, HOURS, WATTS)
    result = ingest(con, cfg, EmbeddedSource(con), T0, T0 + timedelta(hours=HOURS), now=NOW)
    assert (result.filled_intensity_hours, result.implausible_intensity_hours) == (1, 5)  # the CLI's summary line
    out = tmp_path / "report"
    out.mkdir()
    tables, written = run_report_queries(con, *month_bounds("2022-10"), out)
    cols, rows = tables["data_quality_zones"]
    (row,) = [dict(zip(cols, r, strict=True)) for r in rows]
    kwh = WATTS / 1000 * PUE  # facility kWh of each hour
    assert (row["zone"], row["hours"], row["intensity_sources"]) == ("PJM", HOURS, "eia930")
    assert row["filled_hours"] == 1 and row["filled_hours_utc"] == "2022-10-02T11:00Z/2022-10-02T12:00Z"
    assert row["fill_rules"] == "previous_day_same_hour (1 h)"
    assert row["filled_intensity_kwh"] == pytest.approx(kwh)
    # the five real implausible hours (labels 10-01 05..08 and 10-02 04: hour-ending), as two runs
    assert row["implausible_hours"] == 5
    assert row["implausible_hours_utc"] == "2022-10-01T04:00Z/2022-10-01T08:00Z; 2022-10-02T03:00Z/2022-10-02T04:00Z"
    assert row["implausible_kwh"] == pytest.approx(5 * kwh)
    # location-based kg on the direct part of those hours' 43-47 g/kWh life-cycle avg_CI: 23.9-27.1 g/kWh
    # (docs/accounting.md 5.5)
    assert 5 * kwh * 23.9 / 1000 < row["implausible_kg"] < 5 * kwh * 27.1 / 1000
    assert row["missing_intensity_hours"] == 0
    assert row["estimated_energy_kwh"] == 0 and row["estimated_energy_kg"] == 0
    assert row["scope2_location_kg"] > row["implausible_kg"] + row["filled_intensity_kg"]
    # the tidy CSV: one row per hour and issue
    with open(out / "data_quality_hours.csv", newline="") as fh:
        hours = list(csv.DictReader(fh))
    assert [(h["hour_utc"][:16], h["issue"]) for h in hours] == [
        ("2022-10-01 04:00", "implausible"), ("2022-10-01 05:00", "implausible"), ("2022-10-01 06:00", "implausible"),
        ("2022-10-01 07:00", "implausible"), ("2022-10-02 03:00", "implausible"), ("2022-10-02 11:00", "filled")]
    assert hours[-1]["detail"] == "previous_day_same_hour"
    assert "total generation 287 MWh" in hours[0]["detail"] and hours[0]["period_start"].startswith("2022-10-01")
    assert out / "data_quality_zones.csv" in written
    md = "\n".join(section_markdown(grid_quality_section(cols, rows)))
    assert "### Grid data quality per zone" in md and "2022-10-01T04:00Z/2022-10-01T08:00Z" in md


def test_fill_and_refuse_from_the_config(tmp_path: Path) -> None:
    gappy_pjm(tmp_path)
    con = open_store(tmp_path / "wf.duckdb")
    put_gpu(con, "a-1", T0, HOURS, WATTS)
    cfg = load_facility(write_config(tmp_path, site("refuse")))
    with pytest.raises(GridDataError) as err:
        ingest(con, cfg, EmbeddedSource(con), T0, T0 + timedelta(hours=HOURS), now=NOW)
    assert (Path(err.value.source).name, err.value.line, err.value.field) == ("PJM.csv", 175, "avg_CI")
    cfg = load_facility(write_config(tmp_path, site("fill")))
    ingest(con, cfg, EmbeddedSource(con), T0, T0 + timedelta(hours=HOURS), now=NOW)
    assert con.execute("SELECT count(*) FROM stg_grid_implausible").fetchall() == [(0,)]
    out = tmp_path / "report"
    out.mkdir()
    cols, rows = run_report_queries(con, *month_bounds("2022-10"), out)[0]["data_quality_zones"]
    row = dict(zip(cols, rows[0], strict=True))
    assert (row["filled_hours"], row["implausible_hours"]) == (6, 0)
    assert row["fill_rules"] == "previous_day_same_hour (6 h)"
