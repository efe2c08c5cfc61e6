"""The monotonic counter must equal the true energy across wraps and resets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wattfleet.exporter.counters import EnergyCounter, PowerIntegrator

RANGE_UJ = 262143328850 + 1  # a real Intel max_energy_range_uj, plus one


def test_first_reading_is_baseline_only() -> None:
    c = EnergyCounter(scale=1e-6, wrap_range=RANGE_UJ)
    assert c.update(5_000_000, 0.0) == 0.0
    assert c.update(7_000_000, 1.0) == 2.0
    assert c.joules == 2.0


def test_wrap_at_real_max_energy_range() -> None:
    c = EnergyCounter(scale=1e-6, wrap_range=RANGE_UJ)
    c.update(RANGE_UJ - 100_000_000, 0.0)          # 100 J before the wrap
    c.update(50_000_000, 1.0)                      # 50 J after it
    assert c.joules == 150.0
    assert (c.wraps, c.resets) == (1, 0)


def test_implausible_decrease_is_a_reset_not_a_wrap() -> None:
    c = EnergyCounter(scale=1e-6, wrap_range=RANGE_UJ, max_watts=5000)
    c.update(200_000_000_000, 0.0)
    c.update(3_000_000, 1.0)  # a wrap would mean ~62 kJ in 1 s: it is a reset, 3 J since
    assert c.joules == 3.0
    assert (c.wraps, c.resets) == (0, 1)


def test_nvml_counter_without_range_treats_decrease_as_reset() -> None:
    c = EnergyCounter(scale=1e-3)
    c.update(10_000_000, 0.0)
    c.update(10_500_000, 1.0)
    c.update(200, 2.0)  # driver reload: 0.2 J since
    assert c.joules == 500.2
    assert c.resets == 1


def test_rebaseline_skips_the_gap() -> None:
    c = EnergyCounter(scale=1e-6, wrap_range=RANGE_UJ)
    c.update(1_000_000, 0.0)
    c.update(2_000_000, 1.0)
    c.rebaseline()
    c.update(90_000_000, 50.0)
    c.update(91_000_000, 51.0)
    assert c.joules == 2.0


def test_power_integrator_trapezoid() -> None:
    p = PowerIntegrator()
    p.update(100.0, 0.0)
    p.update(200.0, 2.0)
    assert p.joules == 300.0


@settings(max_examples=300, deadline=None)
@given(
    max_range=st.sampled_from([65_535_000, 262_143_328_850, 2**32 - 1, 1_000_000]),
    start=st.integers(min_value=0, max_value=2**40),
    steps=st.lists(st.tuples(st.floats(min_value=0.01, max_value=2.0),       # seconds
                             st.floats(min_value=0.0, max_value=1.0)),       # fraction of a wrap per step
                   min_size=1, max_size=200),
)
def test_counter_equals_true_energy_for_any_reads_and_wraps(max_range: int, start: int,
                                                            steps: list[tuple[float, float]]) -> None:
    """Any sequence of reads with at most one wrap between reads: exact to the microjoule."""
    modulus = max_range + 1
    true_uj = start % modulus
    now = 0.0
    c = EnergyCounter(scale=1e-6, wrap_range=modulus, max_watts=1e12)
    c.update(true_uj % modulus, now)
    fed = 0
    for dt, frac in steps:
        delta = int(frac * (modulus - 1))  # < one full wrap per interval
        true_uj += delta
        fed += delta
        now += dt
        c.update(true_uj % modulus, now)
    assert abs(c.joules - fed * 1e-6) <= 1e-9 * max(1.0, fed * 1e-6)
    assert c.resets == 0
    assert c.wraps == true_uj // modulus - (start % modulus) // modulus
