"""The report's headline: this month's totals, side by side, and the change against the month before."""

from __future__ import annotations

import pytest

from wattfleet.aggregator.outputs.headline import change_text, headline_from_rows, previous_month, value_text

COLS = ["month", "total_location_tco2e", "total_market_tco2e", "it_kwh", "facility_kwh", "water_l", "cfe_ratio",
        "hours_with_data"]


def test_previous_month_crosses_the_year():
    assert previous_month("2026-01") == "2025-12" and previous_month("2026-10") == "2026-09"


def test_change_against_the_previous_month():
    head = headline_from_rows("2026-10", COLS, [("2026-09", 2.0, 2.0, 10.0, 15.0, 100.0, 0.5, 720),
                                                ("2026-10", 2.5, 1.5, 10.0, 15.0, 0.0, 0.6, 744)])
    figs = {f.key: f for f in head.figures}
    assert [f.key for f in head.figures][:2] == ["total_location_tco2e", "total_market_tco2e"]
    assert figs["total_location_tco2e"].change == pytest.approx(0.25)
    assert change_text(figs["total_location_tco2e"], head) == "+25.0 % vs 2026-09"
    assert change_text(figs["total_market_tco2e"], head) == "-25.0 % vs 2026-09"
    assert change_text(figs["cfe_ratio"], head) == "+10.0 points vs 2026-09"  # a ratio moves in points
    assert value_text(figs["cfe_ratio"]) == "60.0" and value_text(figs["facility_kwh"]) == "15.00"


def test_no_previous_month_says_so_instead_of_a_change():
    head = headline_from_rows("2026-10", COLS, [("2026-10", 2.5, 1.5, 10.0, 15.0, 0.0, None, 744)])
    figs = {f.key: f for f in head.figures}
    assert not head.compared
    assert change_text(figs["it_kwh"], head) == "no data for 2026-09 to compare"
    assert value_text(figs["cfe_ratio"]) == "-"
