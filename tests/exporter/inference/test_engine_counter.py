"""EngineCounter: restarts need evidence, dips keep the high-water mark, and nothing implausible is summed."""

from __future__ import annotations

import math

import pytest

from wattfleet.exporter.inference.engine_counter import (
    COUNTER_DIP,
    IMPLAUSIBLE_RATE,
    NEGATIVE,
    NOT_FINITE,
    TOO_LARGE,
    EngineCounter,
)
from wattfleet.exporter.inference.limits import MAX_EXACT_COUNT

BIG = 1e12


def test_first_reading_is_a_baseline_then_increases_add() -> None:
    c = EngineCounter()
    assert c.update(1000, BIG).added == 0
    assert c.update(1500, BIG).added == 500
    assert c.total == 500


def test_a_dip_is_rejected_and_the_high_water_mark_stays() -> None:
    c = EngineCounter()
    c.update(1_000_000, BIG)
    step = c.update(999_000, BIG)
    assert (step.added, step.reason, step.restart) == (0, COUNTER_DIP, False)
    assert c.update(999_500, BIG).reason == COUNTER_DIP
    assert c.update(1_000_200, BIG).added == 200
    assert c.total == 200


def test_a_drop_to_near_zero_or_a_told_restart_counts_from_zero() -> None:
    c = EngineCounter()
    c.update(1000, BIG)
    step = c.update(30, BIG)
    assert (step.added, step.restart) == (30, True)
    step = c.update(5000, BIG, restarted=True)          # restarted and already past the old value
    assert (step.added, step.restart) == (5000, True)
    fresh = EngineCounter()
    assert fresh.update(70, BIG, restarted=True).added == 70  # first seen after a restart: all new


@pytest.mark.parametrize("raw, reason", [(math.nan, NOT_FINITE), (math.inf, NOT_FINITE), (-math.inf, NOT_FINITE),
                                         (-1.0, NEGATIVE), (1e308, TOO_LARGE), (MAX_EXACT_COUNT * 2, TOO_LARGE)])
def test_values_that_cannot_be_counts_are_rejected_and_leave_the_baseline(raw: float, reason: str) -> None:
    c = EngineCounter()
    c.update(100, BIG)
    assert c.update(raw, BIG).reason == reason
    assert c.last == 100
    assert c.update(150, BIG).added == 50
    assert math.isfinite(c.total)


def test_an_increase_above_the_bound_is_rejected_and_counting_goes_on_from_it() -> None:
    c = EngineCounter()
    c.update(0, 100)
    step = c.update(5000, 100)
    assert (step.added, step.reason) == (0, IMPLAUSIBLE_RATE)
    assert c.update(5050, 100).added == 50
    assert c.update(10, 100, restarted=True).added == 10
    assert c.update(200_000, 100, restarted=True).reason == IMPLAUSIBLE_RATE  # a restart is bounded too
    assert c.total == 60
