"""Readings that cannot be physical are rejected and counted, never summed (counters, RAPL, NVML, power)."""

from __future__ import annotations

import math
from pathlib import Path

from conftest import ManualClock
from wattfleet.exporter.counters import EnergyCounter, MonotonicCounter, PowerIntegrator
from wattfleet.exporter.sensors.nvml import NvmlSensor
from wattfleet.exporter.sensors.rapl import RaplSensor
from wattfleet.sim.fake_nvml import FakeNvml
from wattfleet.sim.fake_powercap import FakePowercap

UJ = 1e-6
RANGE = 262143328850


def test_a_terajoule_jump_is_rejected_and_counting_continues() -> None:
    c = EnergyCounter(scale=UJ, wrap_range=RANGE + 1, max_watts=1000.0)
    c.update(1_000_000, 0.0)
    assert c.update(101_000_000, 1.0) == 100.0            # 100 W: fine
    assert c.update(101_000_000 + 10**15, 2.0) == 0.0      # 1e15 uJ = 1 GJ in a second: rejected
    assert c.rejected == 1 and c.joules == 100.0
    assert c.update(101_000_000 + 10**15 + 50_000_000, 3.0) == 50.0   # continues from that reading
    assert c.joules == 150.0


def test_a_glitch_and_back_adds_nothing_either_way() -> None:
    c = EnergyCounter(scale=UJ, wrap_range=RANGE + 1, max_watts=1000.0)
    c.update(5_000_000_000, 0.0)
    c.update(5_000_000_000 + 10**15, 1.0)                 # glitch up: rejected
    added = c.update(5_100_000_000, 2.0)                   # back down: not a wrap, not a 5 kJ reset,
    assert added == 100.0 and c.joules == 100.0 and c.rejected == 1   # measured from the last good reading
    assert c.update(5_200_000_000, 3.0) == 100.0


def test_a_negative_reading_is_rejected_and_the_baseline_kept() -> None:
    c = EnergyCounter(scale=UJ, wrap_range=RANGE + 1, max_watts=1000.0)
    c.update(1_000_000, 0.0)
    assert c.update(-5, 1.0) == 0.0 and c.rejected == 1
    assert c.update(201_000_000, 2.0) == 200.0            # 200 J over 2 s against the kept baseline
    assert c.joules >= 0


def test_a_glitch_near_zero_does_not_count_the_counter_as_a_reset() -> None:
    """Right after boot or a wrap the counter is small: coming back from a glitch must not add it whole."""
    c = EnergyCounter(scale=UJ, wrap_range=RANGE + 1, max_watts=1000.0)
    c.update(50_000_000, 0.0)                              # 50 J since boot
    c.update(10**15, 1.0)                                  # glitch: rejected
    assert c.update(150_000_000, 2.0) == 100.0             # 100 J in 2 s, not the 150 J the counter holds
    assert c.resets == 0 and c.joules == 100.0


def test_real_wraps_and_resets_still_count() -> None:
    c = EnergyCounter(scale=UJ, wrap_range=RANGE + 1, max_watts=1000.0)
    c.update(RANGE - 50_000_000, 0.0)
    assert c.update(50_000_000, 1.0) == 100.000001       # wrapped: 100 J in 1 s
    assert c.wraps == 1 and c.rejected == 0


def test_token_counters_are_not_bounded_by_watts() -> None:
    tokens = MonotonicCounter()
    tokens.update(0, 0.0)
    assert tokens.update(10_000_000, 1.0) == 10_000_000   # 10 M tokens/s is not "watts"


def test_power_readings_out_of_range_are_rejected() -> None:
    p = PowerIntegrator(max_watts=1500.0)
    p.update(100.0, 0.0)
    for bad in (-1.0, math.nan, math.inf, 1e9):
        assert p.update(bad, 1.0) == 0.0
    assert p.rejected == 4
    assert p.update(100.0, 2.0) == 200.0                    # bridged from the last good reading
    assert math.isfinite(p.joules)


def test_rapl_sensor_reports_and_skips_an_implausible_file(sysfs_root: Path) -> None:
    clock = ManualClock()
    FakePowercap(sysfs_root, sockets=1, subdomains=(), clock=clock)
    sensor = RaplSensor(sysfs_root, max_watts=1000.0)
    energy = sysfs_root / "class" / "powercap" / "intel-rapl:0" / "energy_uj"
    for raw, expect_error in ((1_000_000, False), (121_000_000, False), (10**15, True), (-7, True),
                              (10**15 + 120_000_000, False)):
        clock.advance(1.0)
        energy.write_text(f"{raw}\n")
        result = sensor.sample(clock())
        assert ("implausible_reading" in result.errors) is expect_error, (raw, result.errors)
    counter = sensor.zones["intel-rapl:0"].counter
    assert counter.joules == 240.0 and counter.rejected == 2


def test_nvml_sensor_rejects_a_counter_jump() -> None:
    clock = ManualClock()
    nvml = FakeNvml.with_gpus(1, watts=300.0, clock=clock)
    sensor = NvmlSensor(nvml)
    sensor.sample(clock())
    clock.advance(1.0)
    assert not sensor.sample(clock()).errors
    gpu = nvml.gpus[0]
    gpu._counter_base -= 1e12    # the board's millijoule counter jumps by a terajoule
    clock.advance(1.0)
    assert "implausible_reading" in sensor.sample(clock()).errors
    assert sensor.gpus[0].joules < 1000.0


def test_the_gpu_bound_is_the_sensors_to_set() -> None:
    """``--gpu-max-watts``: a board reading above the bound is refused; the default admits it."""
    clock = ManualClock()
    nvml = FakeNvml.with_gpus(1, watts=800.0, clock=clock)
    tight, default = NvmlSensor(nvml, max_watts=500.0), NvmlSensor(nvml)
    for sensor in (tight, default):
        sensor.sample(clock())
    clock.advance(1.0)
    assert "implausible_reading" in tight.sample(clock()).errors
    assert not default.sample(clock()).errors and default.gpus[0].joules == 800.0
