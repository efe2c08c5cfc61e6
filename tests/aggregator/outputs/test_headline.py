"""The report's headline: this month's totals, side by side, and the change against the month before."""

from __future__ import annotations

import pytest

from wattfleet.aggregator.outputs.headline import (
    change_text,
    grand_totals,
    headline_from_rows,
    previous_month,
    value_text,
)

COLS = ["month", "it_kwh", "facility_kwh", "water_l", "cfe_ratio", "hours_with_data"]
SUMMARY = ["scope", "category", "location_based_kg_co2e", "market_based_kg_co2e", "is_total"]


def test_previous_month_crosses_the_year():
    assert previous_month("2026-01") == "2025-12" and previous_month("2026-10") == "2026-09"


def test_emissions_are_the_inventory_summary_grand_total():
    rows = [("Scope 2", "Purchased electricity", 2.0, 1.0, False), ("Scope 2", "Total Scope 2", 2.0, 1.0, True),
            ("Scope 1 + Scope 2 + Scope 3", "Total", 2.5, 1.5, True)]
    assert grand_totals(SUMMARY, rows)["location_based_kg_co2e"] == 2.5
    assert grand_totals(SUMMARY, rows[:2]) == {}


def test_change_against_the_previous_month():
    head = headline_from_rows("2026-10", COLS, [("2026-09", 10.0, 15.0, 100.0, 0.5, 720),
                                                ("2026-10", 10.0, 15.0, 0.0, 0.6, 744)],
                              {"location_based_kg_co2e": 2500.0, "market_based_kg_co2e": 1500.0},
                              {"location_based_kg_co2e": 2000.0, "market_based_kg_co2e": 2000.0})
    figs = {f.key: f for f in head.figures}
    assert [f.key for f in head.figures][:2] == ["location_based_kg_co2e", "market_based_kg_co2e"]
    assert figs["location_based_kg_co2e"].change == pytest.approx(0.25)
    assert change_text(figs["location_based_kg_co2e"], head) == "+25.0 % vs 2026-09"
    assert change_text(figs["market_based_kg_co2e"], head) == "-25.0 % vs 2026-09"
    assert change_text(figs["cfe_ratio"], head) == "+10.0 points vs 2026-09"  # a ratio moves in points
    assert change_text(figs["water_l"], head) == "-100.0 % vs 2026-09"
    assert value_text(figs["cfe_ratio"]) == "60.0" and value_text(figs["facility_kwh"]) == "15.0"
    assert value_text(figs["location_based_kg_co2e"]) == "2,500"


def test_no_previous_month_says_so_instead_of_a_change():
    head = headline_from_rows("2026-10", COLS, [("2026-10", 10.0, 15.0, 0.0, None, 744)],
                              {"location_based_kg_co2e": 2.5, "market_based_kg_co2e": 1.5})
    figs = {f.key: f for f in head.figures}
    assert not head.compared
    assert change_text(figs["it_kwh"], head) == "no data for 2026-09 to compare"
    assert value_text(figs["cfe_ratio"]) == "-"
