"""Best window and place: the sliding-window ranking, checked by brute force on the real EIA-930 files."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import pytest

from wattfleet.aggregator.grid.model import IntensityRow
from wattfleet.aggregator.grid.sources import load_intensity
from wattfleet.aggregator.planning.windows import (
    HourlySeries, PlanError, PlanRequest, SiteOption, history_offset, load_site_series, parse_deadline,
    parse_duration_hours, parse_energy_kwh, rank, rank_site, window_sums,
)

UTC = timezone.utc
from shared_data import EIA_DIR as DATA
ZONES = ("AZPS", "BPAT", "CISO", "MISO", "NYIS", "SOCO", "WAAT")
YEAR_START, YEAR_END = datetime(2022, 1, 1, tzinfo=UTC), datetime(2023, 1, 1, tzinfo=UTC)
FILL = ["previous_day_same_hour", "linear"]

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared EIA-930 data not present")


def spec(zone: str) -> dict:
    return {"source": "eia930", "path": str(DATA / f"{zone}.csv"), "zone": zone, "fill": FILL}


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


# --- the sliding-window core ------------------------------------------------------------------------
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


# --- real files: best window by brute force ------------------------------------------------------------
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


@needs_data
def test_history_mode_replays_same_weekday_and_hour():
    start, end = datetime(2026, 11, 23, 10, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    s = load_site_series(spec("CISO"), "CISO", start, end, mode="auto")
    assert s.mode == "history"
    assert s.start == start
    assert s.replayed_from.year == 2022
    assert s.replayed_from.weekday() == start.weekday() and s.replayed_from.hour == start.hour
    assert (s.replayed_from - start) % timedelta(days=7) == timedelta(0)
    direct = load_intensity(spec("CISO"), s.replayed_from, s.replayed_from + (end - start), now=YEAR_END).rows
    assert s.grams_per_kwh == [r.grams_per_kwh for r in direct]
    plan = rank(PlanRequest(6, 1200, start, end), [SiteOption("sfo", "CISO", 1.2)], {"sfo": s})
    assert any("HISTORY mode" in n for n in plan.notes)
    j = plan.to_json()
    assert j["sites"][0]["mode"] == "history" and j["sites"][0]["replayed_from"].startswith("2022-11-21")
    assert j["sites"][0]["signal"] == "average"


@needs_data
def test_history_window_at_year_end_moves_back_into_the_data():
    start, end = datetime(2026, 12, 27, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC)
    s = load_site_series(spec("MISO"), "MISO", start, end, mode="history")
    assert s.replayed_from + (end - start) <= YEAR_END
    assert s.replayed_from.weekday() == start.weekday()
    assert len(s.grams_per_kwh) == 8 * 24


@needs_data
def test_auto_uses_the_data_directly_when_it_covers_the_window():
    start, end = datetime(2022, 6, 1, tzinfo=UTC), datetime(2022, 6, 3, tzinfo=UTC)
    s = load_site_series(spec("NYIS"), "NYIS", start, end, mode="auto", now=YEAR_END)
    assert s.mode == "forecast" and s.replayed_from is None and len(s.grams_per_kwh) == 48


def test_history_offset_rules():
    ds, de = YEAR_START, YEAR_END
    off = history_offset(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC), ds, de)
    assert off % timedelta(days=7) == timedelta(0)
    assert (datetime(2026, 3, 2, tzinfo=UTC) + off).year == 2022
    with pytest.raises(PlanError, match="longer than the data"):
        history_offset(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC), ds, de)


def test_history_mode_needs_a_file_source():
    with pytest.raises(PlanError, match="file-based"):
        load_site_series({"source": "static", "zone": "FR"}, "FR", datetime(2026, 1, 1, tzinfo=UTC),
                         datetime(2026, 1, 2, tzinfo=UTC), mode="history")


def test_static_source_is_used_as_is():
    s = load_site_series({"source": "static", "zone": "FR"}, "FR", datetime(2026, 1, 1, tzinfo=UTC),
                         datetime(2026, 1, 2, tzinfo=UTC))
    assert s.mode == "forecast" and set(s.grams_per_kwh) == {50.0}


# --- signals ---------------------------------------------------------------------------------------
def _rows(zone, start, values, signal):
    return [IntensityRow(zone, start + timedelta(hours=i), v, signal, "test") for i, v in enumerate(values)]


def test_marginal_preferred_and_mixed_signals_noted():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(hours=4)
    both = _rows("A", start, [100, 100, 100, 100], "average") + _rows("A", start, [500, 10, 10, 500], "marginal")
    sa = HourlySeries.from_rows(both, start, end)
    assert sa.signal == "marginal" and sa.grams_per_kwh == [500, 10, 10, 500]
    sb = HourlySeries.from_rows(_rows("B", start, [50, 50, 50, 50], "average"), start, end)
    plan = rank(PlanRequest(2, 100, start, end), [SiteOption("a", "A", 1.0), SiteOption("b", "B", 1.0)],
                {"a": sa, "b": sb})
    assert plan.best.site == "a" and plan.best.start == start + timedelta(hours=1)
    assert plan.best.signal == "marginal"
    assert any("not directly comparable" in n for n in plan.notes)


def test_missing_hour_in_rows_is_an_error():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = _rows("A", start, [1, 2], "average")
    with pytest.raises(PlanError, match="no average intensity"):
        HourlySeries.from_rows(rows, start, start + timedelta(hours=3))


# --- request parsing --------------------------------------------------------------------------------
def test_parsers():
    assert parse_duration_hours("6h") == 6 and parse_duration_hours("90m") == 1.5
    assert parse_duration_hours("1.5d") == 36 and parse_duration_hours("2") == 2
    assert parse_energy_kwh("1.2MWh") == pytest.approx(1200) and parse_energy_kwh("800kWh") == 800
    assert parse_energy_kwh("3.6e9J") == pytest.approx(1000)
    assert parse_deadline("2026-11-30") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_deadline("2026-11-30T06:00:00Z") == datetime(2026, 11, 30, 6, tzinfo=UTC)
    for bad, fn in (("six hours", parse_duration_hours), ("0h", parse_duration_hours),
                    ("1.2 MW", parse_energy_kwh), ("30 Nov", parse_deadline)):
        with pytest.raises(PlanError):
            fn(bad)


def test_run_that_cannot_finish_is_refused():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(PlanError, match="cannot finish"):
        PlanRequest(6, 1, start, start + timedelta(hours=5)).starts()
    first, count = PlanRequest(6, 1, start + timedelta(minutes=10), start + timedelta(hours=12)).starts()
    assert first == start + timedelta(hours=1) and count == 6


def test_plan_json_is_serialisable():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    s = HourlySeries("Z", start, [300.0, 100.0, 200.0, 300.0])
    plan = rank(PlanRequest(2, 100, start, start + timedelta(hours=4), top=2), [SiteOption("a", "Z", 1.5)],
                {"a": s})
    j = json.loads(json.dumps(plan.to_json()))
    assert j["best"]["start"] == "2026-01-01T01:00:00Z"
    assert j["saving_kg_co2e"] == pytest.approx(100 * 1.5 * (400 - 300) / 2 / 1000)
    assert len(j["ranked"]) == 2


def test_marginal_sub_spec_is_preferred_for_deciding():
    """A site accounted on average intensity may name a marginal source (e.g. WattTime MOER) for planning."""
    from types import SimpleNamespace

    from wattfleet.aggregator.planning.windows import plan_facility
    from wattfleet.aggregator.planning.cli import format_plan

    start = datetime(2026, 11, 23, tzinfo=UTC)
    asked = []

    def loader(spec, s, e):
        asked.append(spec["source"])
        signal = "marginal" if spec["source"] == "watttime" else "average"
        values = [900.0, 100.0, 100.0, 900.0] * 6
        return [IntensityRow(spec["zone"], s + timedelta(hours=i), v, signal, spec["source"])
                for i, v in enumerate(values[: int((e - s).total_seconds() // 3600)])]

    site = SimpleNamespace(zone="CISO", pue=1.2, grid={"source": "static", "zone": "CISO",
                                                       "marginal": {"source": "watttime", "region": "CAISO_NORTH"}})
    cfg = SimpleNamespace(sites={"sfo": site}, path=None)
    plan = plan_facility(cfg, ["sfo"], 2, 100, start + timedelta(hours=4), earliest=start, mode="forecast",
                         loader=loader)
    assert asked == ["watttime"]
    assert plan.best.signal == "marginal" and plan.best.start == start + timedelta(hours=1)
    assert plan.to_json()["sites"][0]["signal"] == "marginal"
    assert "MARGINAL intensity from watttime" in format_plan(plan)


@needs_data
def test_gap_in_real_file_is_flagged_or_refused():
    """CISO 2022-01-05 10:00 is an empty row: filled hours are counted per candidate, never silently used."""
    s0, e0 = datetime(2022, 1, 5, tzinfo=UTC), datetime(2022, 1, 6, tzinfo=UTC)
    s = load_site_series(spec("CISO"), "CISO", s0, e0)
    assert [i for i, f in enumerate(s.filled) if f] == [10]
    plan = rank(PlanRequest(6, 100, s0, e0), [SiteOption("a", "CISO", 1.2)], {"a": s})
    assert "a: 1 of 24 intensity hours are gap fills, not observations" in plan.notes
    assert [c.filled_hours for c in plan.sites[0].candidates[:7]] == [0, 0, 0, 0, 0, 1, 1]
    assert plan.to_json()["sites"][0]["best"]["filled_hours"] in (0, 1)
    with pytest.raises(PlanError, match="no average intensity for 2022-01-05T10:00"):
        load_site_series({**spec("CISO"), "fill": ["none"]}, "CISO", s0, e0)
