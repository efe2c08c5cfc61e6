"""The sampling loop under a hung driver: deadline per collector, the others keep sampling, nothing lost."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from wattfleet.core import catalog
from wattfleet.core.http import MetricsServer
from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.sensors.nvml import NvmlSensor
from wattfleet.exporter.sensors.rapl import RaplSensor
from wattfleet.sim.fake_nvml import FakeNvml
from wattfleet.sim.fake_powercap import FakePowercap


def values(sampler: Sampler, metric: catalog.Metric, **match: str) -> list[float]:
    assert sampler.snapshot is not None
    out = []
    for family in text_string_to_metric_families(sampler.snapshot.body.decode()):
        for s in family.samples:
            if s.name == metric.series and all(s.labels.get(k) == v for k, v in match.items()):
                out.append(s.value)
    return out


def wait_until(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_hung_gpu_driver_is_reported_down_and_its_energy_recovered(sysfs_root: Path) -> None:
    powercap = FakePowercap(sysfs_root, sockets=1)
    nvml = FakeNvml.with_gpus(2, watts=300.0)
    sampler = Sampler([NvmlSensor(nvml), RaplSensor(sysfs_root)], {"node": "n"}, interval=0.1, timeout=0.3)
    powercap.start_writer(0.01)
    sampler.start()
    try:
        wait_until(lambda: values(sampler, catalog.COLLECTOR_UP, collector="nvml") == [1.0])
        cpu_before = sum(values(sampler, catalog.CPU_ENERGY))
        nvml.gpus[0].hang()
        wait_until(lambda: values(sampler, catalog.COLLECTOR_UP, collector="nvml") == [0.0])
        assert values(sampler, catalog.GPU_UP) == [0.0, 0.0]           # its GPUs are down
        assert values(sampler, catalog.COLLECTOR_ERRORS, collector="nvml", reason="timeout")[0] >= 1
        frozen = values(sampler, catalog.GPU_ENERGY)
        assert len(frozen) == 2                                          # held, not vanished
        time.sleep(2.0)   # 600 W x 2 s: as a 0.1 s interval it would look like 12 kW and be refused
        assert values(sampler, catalog.GPU_ENERGY) == frozen             # flat while hung
        assert values(sampler, catalog.COLLECTOR_UP, collector="rapl") == [1.0]
        assert sum(values(sampler, catalog.CPU_ENERGY)) > cpu_before     # the other collector kept sampling
        assert sampler.readiness()[0]                                    # the loop itself is alive
        nvml.gpus[0].unhang()
        wait_until(lambda: values(sampler, catalog.COLLECTOR_UP, collector="nvml") == [1.0])
        wait_until(lambda: values(sampler, catalog.GPU_UP) == [1.0, 1.0])
        exported = sum(values(sampler, catalog.GPU_ENERGY))
        truth = sum(g.true_joules() for g in nvml.gpus)
        # nothing lost across the hang: the counters trail the truth by at most the time since the last sample
        assert 0 <= truth - exported <= 600 * 0.3, (truth, exported)
        recovered = values(sampler, catalog.ENERGY_RECOVERED, collector="nvml")
        assert recovered and recovered[0] > 600 * 2.0                    # 2 GPUs x 300 W x >= 2 s hung
    finally:
        nvml.gpus[0].unhang()
        sampler.stop()
        powercap.stop_writer()


def test_a_stale_snapshot_fails_readiness() -> None:
    wall = [1000.0]
    sampler = Sampler([], interval=1.0, timeout=2.0, wall=lambda: wall[0])
    assert sampler.readiness() == (False, "no sample taken yet")
    sampler.sample_once()
    assert sampler.readiness() == (True, "")
    wall[0] += 60
    ok, why = sampler.readiness()
    assert not ok and "last sample 60 s ago" in why
    server = MetricsServer("127.0.0.1:0", lambda: sampler.snapshot, ready=sampler.readiness)
    server.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url_for("/-/ready"), timeout=5)
        assert err.value.code == 503 and b"stale" in err.value.read()
        assert urllib.request.urlopen(server.url_for("/-/healthy"), timeout=5).status == 200
    finally:
        server.stop()
