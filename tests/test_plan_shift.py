"""Shift analysis and budget burn on plain inputs (the store wiring is in test_disclosure_store.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from wattfleet.aggregator.budget_burn import BudgetBurn, budget_burn
from wattfleet.aggregator.facility import Budget
from wattfleet.aggregator.shift import (EnergyHour, FlexibleWorkload, ShiftConfigError, parse_flexible,
                                        shift_analysis, shift_table_markdown)

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


@pytest.mark.parametrize("items, match", [
    ({"namespace": "x"}, "must be a list"),
    ([{"namespace": "a", "team": "b"}], "exactly one"),
    ([{"namespace": "a", "window_hours": 0}], "window_hours"),
    ([{"namespace": "a", "allowed_hours_utc": [24]}], "allowed_hours_utc"),
    ([{"namespace": "a", "sites": "x"}], "sites"),
    ([{"namespace": "a", "colour": "green"}], "unknown key"),
])
def test_flexible_config_errors(items, match):
    with pytest.raises(ShiftConfigError, match=match):
        parse_flexible(items)


def test_budget_burn_plain_inputs():
    budgets = [Budget("team", "ml", date(2026, 10, 1), 500.0), Budget("model", "m", date(2026, 10, 1), 0.0)]
    burns = budget_burn(budgets, {("team", "ml", date(2026, 10, 1)): 250_000.0})
    assert burns[0] == BudgetBurn("team", "ml", date(2026, 10, 1), 500.0, 250.0)
    assert burns[0].used_ratio == 0.5 and burns[0].period == "2026-10" and burns[0].scope_owner == "team:ml"
    assert burns[1].used_kg == 0 and burns[1].used_ratio is None
    assert burns[0].projected_kg(datetime(2026, 9, 30, tzinfo=UTC)) == 0.0
    j = burns[0].to_json(datetime(2026, 10, 11, 8, tzinfo=UTC))  # 248 of 744 h: a third of October
    assert j["projected_kg"] == pytest.approx(750.0, rel=1e-3)
