"""Spans and instants as the CLI and fault specs write them."""

from __future__ import annotations

from sim_fixtures import JAN1_2022

from wattfleet.sim.timespec import parse_duration, parse_time


def test_durations_take_a_unit() -> None:
    assert parse_duration("500ms") == 0.5 and parse_duration("30d") == 30 * 86400


def test_times_are_unix_seconds_or_iso_8601_in_utc() -> None:
    assert parse_time("1640995200") == parse_time("2022-01-01T00:00:00Z") == parse_time("2022-01-01T00:00:00") \
        == JAN1_2022
