"""Hourly intensity for a planning window: direct, or replayed from history on the same weekday and hour."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from fixtures.agg.planning_inputs import UTC, YEAR_END, YEAR_START, intensity_rows, needs_data, spec
from wattfleet.aggregator.grid.sources import load_intensity
from wattfleet.aggregator.planning.errors import PlanError
from wattfleet.aggregator.planning.ranking import SiteOption, rank
from wattfleet.aggregator.planning.request import PlanRequest
from wattfleet.aggregator.planning.series import HourlySeries, history_offset, load_site_series


@needs_data
def test_history_mode_replays_same_weekday_and_hour():
    start, end = datetime(2026, 11, 23, 10, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    s = load_site_series(spec("CISO"), "CISO", start, end, mode="auto")
    assert s.mode == "history"
    assert s.start == start
    replayed = s.replayed_from
    assert replayed is not None
    assert replayed.year == 2022
    assert replayed.weekday() == start.weekday() and replayed.hour == start.hour
    assert (replayed - start) % timedelta(days=7) == timedelta(0)
    direct = load_intensity(spec("CISO"), replayed, replayed + (end - start), now=YEAR_END).rows
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
    replayed = s.replayed_from
    assert replayed is not None
    assert replayed + (end - start) <= YEAR_END
    assert replayed.weekday() == start.weekday()
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


def test_missing_hour_in_rows_is_an_error():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = intensity_rows("A", start, [1, 2], "average")
    with pytest.raises(PlanError, match="no average intensity"):
        HourlySeries.from_rows(rows, start, start + timedelta(hours=3))


@needs_data
def test_gap_in_real_file_is_flagged_or_refused():
    """CISO's row labelled 2022-01-05 10:00 is empty: the hour from 09:00 (EIA labels an hour by its end) is filled,
    and filled hours are counted per candidate, never silently used."""
    s0, e0 = datetime(2022, 1, 5, tzinfo=UTC), datetime(2022, 1, 6, tzinfo=UTC)
    s = load_site_series(spec("CISO"), "CISO", s0, e0)
    assert [i for i, f in enumerate(s.filled) if f] == [9]
    plan = rank(PlanRequest(6, 100, s0, e0), [SiteOption("a", "CISO", 1.2)], {"a": s})
    assert "a: 1 of 24 intensity hours are gap fills, not observations" in plan.notes
    assert [c.filled_hours for c in plan.sites[0].candidates[:7]] == [0, 0, 0, 0, 1, 1, 1]
    assert plan.to_json()["sites"][0]["best"]["filled_hours"] in (0, 1)
    with pytest.raises(PlanError, match="no average intensity for 2022-01-05T09:00"):
        load_site_series({**spec("CISO"), "fill": ["none"]}, "CISO", s0, e0)
