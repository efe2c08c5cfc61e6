"""Shift analysis on plain inputs and in the monthly report (the store wiring is in test_disclosure_store.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wattfleet.aggregator.config.flexible import parse_flexible
from wattfleet.aggregator.config.model import FlexibleWorkload
from wattfleet.aggregator.planning.shift import EnergyHour, shift_analysis, shift_table_markdown

UTC = timezone.utc
DAY = datetime(2026, 10, 5, tzinfo=UTC)
# Site x intensity by hour of day: x is dirty by day (500) and clean at night (100); y is 50 all day.
INTENSITY = {"x": lambda h: 100.0 if h.hour < 6 else 500.0, "y": lambda h: 50.0}
PUE = {"x": 1.5, "y": 1.2}


def factor(site, hour):
    if site not in INTENSITY:
        return None
    return PUE[site], INTENSITY[site](hour)


def day_job(ns="batch-etl", team="data", hours=range(10, 14), kwh=2.0, site="x"):
    """A job that ran 10:00-14:00 at 2 kWh/h IT, accounted at its site's PUE and intensity."""
    out = []
    for h in hours:
        t = DAY + timedelta(hours=h)
        pue, g = factor(site, t)
        out.append(EnergyHour(t, site, ns, team, kwh, kwh * pue, kwh * pue * g))
    return out


def test_time_shift_fills_cleanest_hours_at_peak_rate():
    rows = day_job()
    [r] = shift_analysis(rows, [FlexibleWorkload("namespace", "batch-*")], factor, DAY, DAY + timedelta(days=1))
    assert r.actual_kg == pytest.approx(8 * 1.5 * 500 / 1000)  # 6.0 kg
    # 8 kWh moved to the 6 clean night hours, at most 2 kWh per hour: 4 hours at 100 g
    assert r.time_shift_kg == pytest.approx(8 * 1.5 * 100 / 1000)
    assert r.site_shift_kg is None and r.uncovered_kwh == 0
    assert r.saving_ratio == pytest.approx(0.8)


def test_allowed_hours_and_cap_limit_the_shift():
    rows = day_job()
    fw = FlexibleWorkload("namespace", "batch-*", allowed_hours_utc=frozenset({4, 5, 10, 11, 12, 13}))
    [r] = shift_analysis(rows, [fw], factor, DAY, DAY + timedelta(days=1))
    # two clean hours (04, 05) take 4 kWh; the other 4 kWh stay in dirty hours
    assert r.time_shift_kg == pytest.approx((4 * 1.5 * 100 + 4 * 1.5 * 500) / 1000)


def test_missing_intensity_keeps_energy_where_it_ran():
    rows = day_job()

    def sparse(site, hour):
        return factor(site, hour) if hour.hour == 0 else None
    [r] = shift_analysis(rows, [FlexibleWorkload("namespace", "batch-*")], sparse, DAY, DAY + timedelta(days=1))
    assert r.uncovered_kwh == pytest.approx(6.0)
    # 2 kWh fit the one hour with intensity (00:00, at its 2 kWh/h peak); 6 kWh keep their accounted 500 g
    assert r.time_shift_kg == pytest.approx((2 * 1.5 * 100 + 6 * 1.5 * 500) / 1000)
    assert "kept as run" in r.notes[0]


def test_site_shift_picks_cleanest_allowed_site_with_its_pue():
    rows = day_job()
    fw = parse_flexible([{"team": "data", "sites": ["x", "y", "nowhere"]}])
    [r] = shift_analysis(rows, fw, factor, DAY, DAY + timedelta(days=1))
    assert r.kind == "team" and r.key == "data"
    assert r.best_site == "y" and r.site_shift_kg == pytest.approx(8 * 1.2 * 50 / 1000)
    assert any("nowhere" in n for n in r.notes)
    md = shift_table_markdown([r])
    assert "| team=data | 8.00 | 6.00 | 1.20 | y | 0.48 | 92.0% |" in md


def test_first_matching_rule_wins_and_other_work_is_ignored():
    rows = day_job() + day_job(ns="prod-api", team="web")
    flex = [FlexibleWorkload("namespace", "batch-*"), FlexibleWorkload("team", "data")]
    out = shift_analysis(rows, flex, factor, DAY, DAY + timedelta(days=1))
    assert [(r.kind, r.key) for r in out] == [("namespace", "batch-etl")]
    assert shift_table_markdown([]).count("no flexible work") == 1


def test_windows_do_not_mix_days():
    # Ran on day 2 at noon; window_hours 24 means it may only move within day 2.
    rows = [EnergyHour(DAY + timedelta(days=1, hours=12), "x", "batch-a", None, 1.0, 1.5, 750.0)]
    fw = FlexibleWorkload("namespace", "batch-*", window_hours=24)
    [r] = shift_analysis(rows, [fw], factor, DAY, DAY + timedelta(days=2))
    assert r.time_shift_kg == pytest.approx(0.15)


def test_monthly_report_shows_shift_section(tmp_path):
    """`wattfleet report` on the fixture fleet: flexible work next to its cleanest hours and site."""
    from fixtures.agg.disclosure_fleet import FACILITY, build
    from wattfleet.aggregator.outputs.report import write_report

    (tmp_path / "facility.yaml").write_text(FACILITY)
    cfg, con = build(str(tmp_path / "fleet.duckdb"), tmp_path / "facility.yaml")
    con.close()
    # The job ran 00:00-04:00 on 5 October at site a (CISO 200/300/100/400 g, PUE 1.5, 1.2 at 01:00); it may
    # run only at 00:00 and 02:00 UTC, or at site b (SE, 20 g, PUE 1.1). At its 1.2 kWh/h peak, two allowed
    # hours take 2.4 of its 4.8 kWh IT, cleanest first.
    cfg.flexible = parse_flexible([{"namespace": "train-*", "allowed_hours_utc": [0, 2], "sites": ["a", "b"]},
                                   {"team": "inference"}])
    out = tmp_path / "report"
    write_report(tmp_path / "fleet.duckdb", "2026-10", out, cfg)
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "## Shift analysis (flexible work)" in md and "Shift analysis (flexible work)</h2>" in page
    # actual: 1.8 x 200 + 1.44 x 300 + 1.8 x 100 + 1.8 x 400 = 1,692 g. Time shift: hours 00 (1.5 x 200 = 300 g
    # per IT kWh) and 02 (1.5 x 100 = 150) take 1.2 kWh each; the 2.4 kWh left keeps its accounted share
    # (half of 1,692 g): 1.2 x 150 + 1.2 x 300 + 846 = 1,386 g. Site b: 4.8 x 1.1 x 20 = 105.6 g.
    # (the report's table: each column formatted alike, three significant digits on its largest figure)
    assert "| namespace=train-llm | 4.80 | 1.69 | 1.39 | b | 0.106 | 93.8 |" in md
    assert "2.400 kWh found no allowed hour" in md
    # the inference team ran at b all along, in hours with one intensity: nothing to gain
    assert "| team=inference | 1.60 | 0.04 | 0.04 | - | - | 0.0 |" in md
    assert ">namespace=train-llm</td>" in page


def test_no_flexible_work_means_no_report_section(tmp_path):
    from fixtures.agg.disclosure_fleet import FACILITY, build
    from wattfleet.aggregator.planning.shift import report_section

    (tmp_path / "facility.yaml").write_text(FACILITY)
    cfg, con = build(str(tmp_path / "fleet.duckdb"), tmp_path / "facility.yaml")
    try:
        assert report_section(con, cfg, datetime(2026, 10, 1), datetime(2026, 11, 1)) is None
        assert report_section(con, None, datetime(2026, 10, 1), datetime(2026, 11, 1)) is None
        cfg.flexible = parse_flexible([{"namespace": "nothing-*"}])
        section = report_section(con, cfg, datetime(2026, 10, 1), datetime(2026, 11, 1))
        assert section is not None
        md, page = section
        assert "no flexible work" in md and "no flexible work" in page
    finally:
        con.close()
