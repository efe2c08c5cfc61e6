"""RAPL through a fake powercap tree: the real reader, real files."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import pytest

from wattfleet.core import catalog
from wattfleet.exporter.sensors.base import SensorUnavailable
from wattfleet.exporter.sensors.rapl import RaplSensor
from wattfleet.sim.fake_powercap import DEFAULT_MAX_ENERGY_RANGE_UJ, FakePowercap


def energies(result) -> dict[tuple[str, str], float]:
    return {(s.labels["socket"], s.labels["domain"]): s.value for s in result.samples
            if s.metric == catalog.CPU_ENERGY.name}


def test_discovers_sockets_and_domains_like_sysfs(sysfs_root: Path, clock) -> None:
    FakePowercap(sysfs_root, sockets=2, psys=True, clock=clock)
    sensor = RaplSensor(sysfs_root)
    labels = sorted((z.socket, z.domain) for z in sensor.zones.values())
    assert labels == sorted([("0", "package"), ("0", "core"), ("0", "uncore"), ("0", "dram"),
                             ("1", "package"), ("1", "core"), ("1", "uncore"), ("1", "dram"),
                             ("platform", "psys")])


def test_mmio_duplicates_are_ignored(sysfs_root: Path, clock) -> None:
    FakePowercap(sysfs_root, sockets=1, subdomains=(), clock=clock)
    mmio = sysfs_root / "class" / "powercap" / "intel-rapl-mmio:0"
    mmio.mkdir()
    (mmio / "name").write_text("package-0\n")
    (mmio / "energy_uj").write_text("5\n")
    (mmio / "max_energy_range_uj").write_text("1000\n")
    assert [z.device for z in RaplSensor(sysfs_root).zones.values()] == ["intel-rapl:0"]


def test_energy_follows_truth_across_real_range_wraps(sysfs_root: Path, clock) -> None:
    # Start just below the real wrap point so the package counter wraps during the run.
    fake = FakePowercap(sysfs_root, sockets=2, start_uj=DEFAULT_MAX_ENERGY_RANGE_UJ - 500_000_000,
                        package_watts=250.0, clock=clock)
    sensor = RaplSensor(sysfs_root)
    sensor.sample(clock())
    start = {d: fake.true_joules(d) for d in fake.zones}
    for _ in range(20):
        clock.advance(1.0)
        fake.update()
        result = sensor.sample(clock())
    got = energies(result)
    assert got[("0", "package")] == pytest.approx(fake.true_joules("intel-rapl:0") - start["intel-rapl:0"], rel=1e-9)
    assert got[("1", "dram")] == pytest.approx(fake.true_joules("intel-rapl:1:2") - start["intel-rapl:1:2"], rel=1e-9)
    assert result.corrections[("rapl", "intel-rapl:0")] == (1, 0)
    powers = {(s.labels["socket"], s.labels["domain"]): s.value for s in result.samples
              if s.metric == catalog.CPU_POWER.name}
    assert powers[("0", "package")] == pytest.approx(250.0)


def test_counter_reset_is_counted_and_energy_kept(sysfs_root: Path, clock) -> None:
    fake = FakePowercap(sysfs_root, sockets=1, subdomains=(), start_uj=200_000_000_000, clock=clock)
    sensor = RaplSensor(sysfs_root)
    sensor.sample(clock())
    clock.advance(1.0)
    fake.update()
    sensor.sample(clock())
    fake.reset("intel-rapl:0")
    clock.advance(1.0)
    fake.update()
    result = sensor.sample(clock())
    assert result.corrections[("rapl", "intel-rapl:0")] == (0, 1)
    # 120 J before the reset; after it only what flowed since the reset (0 s here) + 1 s.
    assert energies(result)[("0", "package")] == pytest.approx(240.0)


def test_zone_vanishing_keeps_counter_and_reports_error(sysfs_root: Path, clock, caplog) -> None:
    fake = FakePowercap(sysfs_root, sockets=2, subdomains=(), clock=clock)
    sensor = RaplSensor(sysfs_root)
    sensor.sample(clock())
    clock.advance(1.0)
    fake.update()
    sensor.sample(clock())
    fake.remove("intel-rapl:1")
    clock.advance(1.0)
    fake.update()
    with caplog.at_level(logging.WARNING):
        result = sensor.sample(clock())
        sensor.sample(clock())
    assert result.errors == ["zone_vanished"]
    got = energies(result)
    assert got[("1", "package")] == pytest.approx(120.0)   # frozen, not dropped, not reset to 0
    assert got[("0", "package")] == pytest.approx(240.0)   # the other socket is unaffected
    assert sum("vanished" in r.message for r in caplog.records) == 1  # one line, not one per sample


def test_no_powercap_tree_means_unavailable(sysfs_root: Path) -> None:
    with pytest.raises(SensorUnavailable, match="no RAPL zones"):
        RaplSensor(sysfs_root)


def _in_child_as_nobody(fn):
    """Run ``fn()`` in a forked child with root dropped to nobody (root ignores chmod 000)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            out = ("ok", fn())
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            out = ("error", f"{type(exc).__name__}: {exc}")
        os.write(w, pickle.dumps(out))
        os.close(w)
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return pickle.loads(data)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to nobody")
def test_permission_denied_is_a_warning_not_a_crash(sysfs_root: Path, clock) -> None:
    fake = FakePowercap(sysfs_root, sockets=1, subdomains=("dram",), clock=clock)
    fake.make_unreadable("intel-rapl:0:0")

    def probe():
        records: list[str] = []

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                records.append(record.getMessage())

        handler = Collect()
        logging.getLogger("wattfleet.exporter.sensors.rapl").addHandler(handler)
        sensor = RaplSensor(sysfs_root)
        result = sensor.sample(1.0)
        sensor.sample(2.0)
        return records, result.errors, sorted(energies(result))

    status, value = _in_child_as_nobody(probe)
    assert status == "ok", value
    records, errors, domains = value
    assert errors == ["permission_denied"]
    assert domains == [("0", "dram"), ("0", "package")]
    assert len([m for m in records if "CVE-2020-8694" in m]) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to nobody")
def test_all_zones_unreadable_makes_rapl_unavailable(sysfs_root: Path, clock) -> None:
    fake = FakePowercap(sysfs_root, sockets=1, subdomains=(), clock=clock)
    fake.make_unreadable("intel-rapl:0")

    def probe():
        try:
            RaplSensor(sysfs_root)
        except SensorUnavailable as exc:
            return str(exc)
        return "available"

    status, value = _in_child_as_nobody(probe)
    assert status == "ok"
    assert "none readable" in value and "CVE-2020-8694" in value


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(max_range=st.sampled_from([65_535_000, 1_000_000_000, DEFAULT_MAX_ENERGY_RANGE_UJ]),
       start=st.integers(min_value=0, max_value=DEFAULT_MAX_ENERGY_RANGE_UJ),
       steps=st.lists(st.tuples(st.floats(min_value=0.05, max_value=5.0), st.floats(min_value=0.0, max_value=400.0)),
                      min_size=1, max_size=60))
def test_exported_counter_equals_truth_through_real_files(sysfs_root: Path, max_range: int, start: int,
                                                          steps: list[tuple[float, float]]) -> None:
    """Through the sysfs files and the sensor: exact for any powers and read times with < 1 wrap per read."""
    import shutil
    shutil.rmtree(sysfs_root / "class", ignore_errors=True)
    shutil.rmtree(sysfs_root / "devices", ignore_errors=True)
    now = [0.0]
    fake = FakePowercap(sysfs_root, sockets=1, subdomains=(), max_energy_range_uj=max_range,
                        start_uj=start, clock=lambda: now[0])
    sensor = RaplSensor(sysfs_root, max_watts=1e9)
    sensor.sample(now[0])
    base = fake.true_joules("intel-rapl:0")
    for dt, watts in steps:
        watts = min(watts, 0.99 * max_range * 1e-6 / dt)  # keep below one wrap per interval
        fake.set_power("intel-rapl:0", watts)
        now[0] += dt
        fake.update()
        result = sensor.sample(now[0])
    got = energies(result)[("0", "package")]
    # files hold whole microjoules: allow one uJ of rounding per read
    assert got == pytest.approx(fake.true_joules("intel-rapl:0") - base, abs=1e-6 * (len(steps) + 1))
