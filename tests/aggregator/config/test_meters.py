"""A site's PUE: metered periods inline or from a CSV, each error at its own file and line."""

from __future__ import annotations

from datetime import datetime, timezone

from fixtures.agg.facility_text import GOOD, errors, write
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.planning.estimators import site_pue_at


def test_pue_meter_below_one_and_missing_default(tmp_path):
    text = GOOD.replace("pue: 1.4", "pue:\n      meter:\n        - {month: 2026-10, total_kwh: 90, it_kwh: 100}")
    problems = errors(tmp_path, text)
    assert any(":14: sites[1].pue.meter[0].total_kwh: PUE below 1" in p for p in problems), problems
    assert any("sites[1].pue.default" in p and "required" in p for p in problems), problems


def test_pue_meter_csv(tmp_path):
    (tmp_path / "meter.csv").write_text("month,total_kwh,it_kwh\n2026-10,150,100\n2026-11,80,100\n")
    text = GOOD.replace("pue: 1.4", "pue: {default: 1.4, meter_csv: meter.csv}")
    problems = errors(tmp_path, text)
    assert problems == [f"{tmp_path / 'meter.csv'}:3: total_kwh: PUE below 1: total 80 kWh < IT 100 kWh "
                        "(facility energy includes IT)"]


def test_hourly_meter_rows_and_overlaps(tmp_path):
    text = GOOD.replace("pue: 1.4", "pue:\n      default: 1.4\n      meter:\n"
                                    "        - {hour: '2026-10-01T00:00Z', total_kwh: 130, it_kwh: 100}\n"
                                    "        - {hour: '2026-10-01T00:30Z', total_kwh: 130, it_kwh: 100}\n"
                                    "        - {month: 2026-10, hour: '2026-10-01T01:00Z', total_kwh: 1, it_kwh: 1}\n"
                                    "        - {month: 2026-10, total_kwh: 130, it_kwh: 100}\n"
                                    "        - {hour: '2026-10-01T00:00Z', total_kwh: 120, it_kwh: 100}\n"
                                    "        - {month: 2026-10, total_kwh: 125, it_kwh: 100}")
    problems = errors(tmp_path, text)
    assert any("sites[1].pue.meter[1].hour: must be a whole hour" in p for p in problems), problems
    assert any("sites[1].pue.meter[2]: give exactly one of 'month'" in p for p in problems), problems
    # An hourly reading inside a metered month is fine (it wins for its hour); two of a kind are not.
    where = f"{tmp_path / 'facility.yaml'}"
    assert f"{where}:19: sites[1].pue.meter[4]: meter periods overlap at 2026-10-01T00:00:00+00:00: this hourly " \
           f"reading and the one at {where}:15: sites[1].pue.meter[0]" in problems, problems
    assert f"{where}:20: sites[1].pue.meter[5]: meter periods overlap at 2026-10-01T00:00:00+00:00: this monthly " \
           f"reading and the one at {where}:18: sites[1].pue.meter[3]" in problems, problems
    assert len(problems) == 4, problems


def test_overlapping_csv_meter_rows_name_their_lines(tmp_path):
    (tmp_path / "meter.csv").write_text("hour,total_kwh,it_kwh\n2026-10-01T05:00Z,125,100\n"
                                        "2026-10-01T06:00Z,130,100\n2026-10-01T05:00Z,120,100\n")
    problems = errors(tmp_path, GOOD.replace("pue: 1.4", "pue: {default: 1.4, meter_csv: meter.csv, "
                                                         "meter: [{month: 2026-10, total_kwh: 130, it_kwh: 100}]}"))
    csv_path = tmp_path / "meter.csv"
    assert problems == [f"{csv_path}:4: (top): meter periods overlap at 2026-10-01T05:00:00+00:00: this hourly "
                        f"reading and the one at {csv_path}:2: (top)"]


def test_metered_pue_is_used_for_its_hours(tmp_path):
    (tmp_path / "meter.csv").write_text("hour,total_kwh,it_kwh\n2026-10-01T05:00Z,125,100\n")
    cfg = load_facility(write(tmp_path, GOOD.replace("pue: 1.4", "pue: {default: 1.4, meter_csv: meter.csv}")))
    s2 = cfg.sites["s2"]
    assert site_pue_at(s2, datetime(2026, 10, 1, 5, tzinfo=timezone.utc))[0] == 1.25
    assert site_pue_at(s2, datetime(2026, 10, 1, 6, tzinfo=timezone.utc))[0] == 1.4
