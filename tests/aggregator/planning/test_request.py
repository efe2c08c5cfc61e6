"""What a plan is asked: duration, energy, deadline and price parsing, and which start hours fit."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wattfleet.aggregator.planning.errors import PlanError
from wattfleet.aggregator.planning.request import (
    PlanRequest,
    parse_costs,
    parse_deadline,
    parse_duration_hours,
    parse_earliest,
    parse_energy_kwh,
)

UTC = timezone.utc


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


def test_earliest_date_is_the_start_of_the_day():
    assert parse_earliest("2026-11-30") == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_earliest("2026-11-30T06:00:00+01:00") == datetime(2026, 11, 30, 5, tzinfo=UTC)
    with pytest.raises(PlanError, match="--after"):
        parse_earliest("tomorrow")


def test_costs_are_prices_per_site():
    assert parse_costs([(" sfo ", "0.12"), ("chi", "0")]) == {"sfo": 0.12, "chi": 0.0}
    for site, price in (("sfo", "-1"), ("sfo", "nan"), ("sfo", "cheap"), (" ", "1")):
        with pytest.raises(PlanError, match="expected SITE and a price >= 0"):
            parse_costs([(site, price)])
