"""Marked energy capped by the GPUs' measured energy."""

from __future__ import annotations

import pytest

from wattfleet.exporter.inference.attribution import cap_to_measured, marked_energy_cap


def test_claims_within_the_cap_pass_unchanged() -> None:
    claimed = {"prefill": 50.0, "decode": 150.0}
    assert cap_to_measured(claimed, 200.0) == (claimed, 0.0)


def test_claims_above_the_cap_are_scaled_down_and_the_excess_returned() -> None:
    capped, excess = cap_to_measured({"prefill": 300.0, "decode": 900.0}, 600.0)
    assert capped == {"prefill": pytest.approx(150.0), "decode": pytest.approx(450.0)}
    assert excess == pytest.approx(600.0)


def test_the_cap_is_the_measured_energy_plus_a_timing_tolerance() -> None:
    assert marked_energy_cap(1000.0, 2) == pytest.approx(1000.0 * 1.05 + 20.0)
    assert marked_energy_cap(-5.0, 1) == pytest.approx(10.0)
