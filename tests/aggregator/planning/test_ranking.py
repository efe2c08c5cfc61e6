"""Ranking by expected emissions: the sliding-window core, checked by brute force on the real EIA-930 files."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

import pytest

from fixtures.agg.planning_inputs import UTC, YEAR_END, YEAR_START, ZONES, intensity_rows, needs_data, spec
from wattfleet.aggregator.grid.sources import load_intensity
from wattfleet.aggregator.planning.errors import PlanError
from wattfleet.aggregator.planning.ranking import SiteOption, rank, rank_site, window_sums
from wattfleet.aggregator.planning.request import PlanRequest
from wattfleet.aggregator.planning.series import HourlySeries


@pytest.fixture(scope="module")
def year_series() -> dict[str, HourlySeries]:
    out = {}
    for z in ZONES:
        rows = load_intensity(spec(z), YEAR_START, YEAR_END, now=YEAR_END).rows
        out[z] = HourlySeries.from_rows(rows, YEAR_START, YEAR_END, zone=z)
    return out


def brute_force(values: list[float], duration: float) -> list[float]:
    n, frac = int(math.floor(duration)), duration - math.floor(duration)
    span = n + (1 if frac else 0)
    out = []
    for s in range(len(values) - span + 1):
        total = 0.0
        for i in range(n):
            total += values[s + i]
        if frac:
            total += frac * values[s + n]
        out.append(total)
    return out


@pytest.mark.parametrize("duration", [1, 2.5, 6, 6.25, 24])
def test_window_sums_match_brute_force(duration):
    values = [float((i * 37) % 101) for i in range(200)]
    assert window_sums(values, duration) == pytest.approx(brute_force(values, duration))


def test_window_sums_too_short_and_bad_duration():
    assert window_sums([1.0, 2.0], 3) == []
    assert window_sums([1.0, 2.0], 1.5) == [pytest.approx(2.0)]
    with pytest.raises(PlanError, match="> 0"):
        window_sums([1.0], 0)


def test_partial_last_hour_is_weighted():
    # 1.5 h from hour 0: (100 x 1 + 200 x 0.5) / 1.5 = 133.33 g/kWh; 1,000 kWh IT x PUE 1.2
    start = datetime(2026, 1, 1, tzinfo=UTC)
    series = HourlySeries("Z", start, [100.0, 200.0, 400.0])
    req = PlanRequest(1.5, 1000.0, start, start + timedelta(hours=3))
    sp = rank_site(req, SiteOption("a", "Z", 1.2, 0.1), series)
    assert len(sp.candidates) == 2
    c0, c1 = sp.candidates
    assert c0.mean_grams_per_kwh == pytest.approx(200.0 / 1.5)
    assert c0.kg_co2e == pytest.approx(1200 * (200.0 / 1.5) / 1000)
    assert c1.mean_grams_per_kwh == pytest.approx((200 + 200) / 1.5)
    assert c0.end == start + timedelta(hours=1.5)
    assert c0.cost == pytest.approx(1200 * 0.1)
    assert sp.best is c0


@needs_data
@pytest.mark.parametrize("duration", [6, 6.5])
def test_best_window_on_real_files_matches_brute_force(year_series, duration):
    sites = [SiteOption(z.lower(), z, 1.1 + 0.01 * i) for i, z in enumerate(ZONES)]
    series = {s.name: year_series[s.zone] for s in sites}
    req = PlanRequest(duration, 1200.0, YEAR_START, YEAR_END, top=5)
    plan = rank(req, sites, series)
    expected = []
    for s in sites:
        sums = brute_force(year_series[s.zone].grams_per_kwh, duration)
        for i, total in enumerate(sums):
            expected.append((1200.0 * s.pue * total / duration / 1000.0, YEAR_START + timedelta(hours=i), s.name))
    expected.sort()
    best_kg, best_start, best_site = expected[0]
    assert (plan.best.site, plan.best.start) == (best_site, best_start)
    assert plan.best.kg_co2e == pytest.approx(best_kg)
    assert [c.kg_co2e for c in plan.ranked] == pytest.approx([e[0] for e in expected[:5]])
    # every site's best is its own brute-force minimum too
    for sp in plan.sites:
        own = min(e for e in expected if e[2] == sp.site.name)
        assert (sp.best.start, sp.best.kg_co2e) == (own[1], pytest.approx(own[0]))
    assert len(plan.sites[0].candidates) == 8760 - math.ceil(duration) + 1


def test_marginal_preferred_and_mixed_signals_noted():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(hours=4)
    both = (intensity_rows("A", start, [100, 100, 100, 100], "average")
            + intensity_rows("A", start, [500, 10, 10, 500], "marginal"))
    sa = HourlySeries.from_rows(both, start, end)
    assert sa.signal == "marginal" and sa.grams_per_kwh == [500, 10, 10, 500]
    sb = HourlySeries.from_rows(intensity_rows("B", start, [50, 50, 50, 50], "average"), start, end)
    plan = rank(PlanRequest(2, 100, start, end), [SiteOption("a", "A", 1.0), SiteOption("b", "B", 1.0)],
                {"a": sa, "b": sb})
    assert plan.best.site == "a" and plan.best.start == start + timedelta(hours=1)
    assert plan.best.signal == "marginal"
    assert any("not directly comparable" in n for n in plan.notes)


def test_plan_json_is_serialisable():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    s = HourlySeries("Z", start, [300.0, 100.0, 200.0, 300.0])
    plan = rank(PlanRequest(2, 100, start, start + timedelta(hours=4), top=2), [SiteOption("a", "Z", 1.5)],
                {"a": s})
    j = json.loads(json.dumps(plan.to_json()))
    assert j["best"]["start"] == "2026-01-01T01:00:00Z"
    assert j["saving_kg_co2e"] == pytest.approx(100 * 1.5 * (400 - 300) / 2 / 1000)
    assert len(j["ranked"]) == 2
