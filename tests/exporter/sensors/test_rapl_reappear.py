"""A RAPL zone that vanishes and comes back (driver reloaded): the counter goes on, the gap is not counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from wattfleet.core import catalog
from wattfleet.exporter.sensors.rapl import RaplSensor
from wattfleet.sim.fake_powercap import FakePowercap

WATTS = 120.0


def _package_samples(result) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for s in result.samples:
        if s.metric == catalog.CPU_ENERGY.name and s.labels["domain"] == "package":
            out.setdefault(s.labels["socket"], []).append(s.value)
    return out


def _step(clock, fake: FakePowercap, sensor: RaplSensor, seconds: float):
    clock.advance(seconds)
    fake.update()
    return sensor.sample(clock())


@pytest.mark.parametrize("rediscover_every", [1, 0], ids=["rediscovering", "no-rediscovery"])
def test_reappearing_zone_keeps_counter_rebaselines_and_skips_the_gap(sysfs_root: Path, clock,
                                                                       rediscover_every: int) -> None:
    """Guards exporter/sensors/rapl.py: on vanishing the zone's counter is kept and rebaselined, rediscovery
    keeps the existing counter (``setdefault``), so after the return the counter continues from what it had
    counted, the first reading only sets a new baseline (the energy of the gap, unknown to us, is not
    added even though the hardware count includes it), and the zone is one series, counted once."""
    fake = FakePowercap(sysfs_root, sockets=2, subdomains=(), package_watts=WATTS, clock=clock)
    sensor = RaplSensor(sysfs_root, rediscover_every=rediscover_every)
    sensor.sample(clock())
    _step(clock, fake, sensor, 1.0)                      # 120 J on both sockets
    fake.remove("intel-rapl:1")
    for _ in range(2):                                   # 10 s away: 1,200 J the exporter never sees
        gone = _step(clock, fake, sensor, 5.0)
    assert gone.errors == ["zone_vanished"]
    assert _package_samples(gone)["1"] == [pytest.approx(WATTS)]  # kept, frozen
    fake.restore("intel-rapl:1")
    back = _step(clock, fake, sensor, 0.0)               # first reading after the return: baseline only
    assert back.errors == []
    assert _package_samples(back)["1"] == [pytest.approx(WATTS)]
    after = _step(clock, fake, sensor, 1.0)
    got = _package_samples(after)
    assert got["1"] == [pytest.approx(2 * WATTS)]        # 1 s before + 1 s after, nothing of the gap
    assert got["0"] == [pytest.approx(12 * WATTS)]       # the other socket counted throughout
    assert after.corrections[("rapl", "intel-rapl:1")] == (0, 0)  # neither a wrap nor a reset was counted
    assert len([z for z in sensor.zones.values() if z.socket == "1"]) == 1
