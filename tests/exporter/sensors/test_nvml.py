"""NVML sensor against the fake NVML module (and the real one, which finds no driver here)."""

from __future__ import annotations

import pytest

from wattfleet.core import catalog
from wattfleet.exporter.sensors.base import SensorUnavailable
from wattfleet.exporter.sensors.nvml import NvmlSensor
from wattfleet.sim.fake_nvml import FakeGpu, FakeMig, FakeNvml


def by_gpu(result, metric) -> dict[str, float]:
    return {s.labels["gpu"]: s.value for s in result.samples if s.metric == metric.name}


def test_energy_counter_and_gauges(clock) -> None:
    nv = FakeNvml.with_gpus(2, watts=300.0, clock=clock)
    nv.gpus[1].set_power(450.0, utilization=0.9)
    sensor = NvmlSensor(nv)
    sensor.sample(clock())
    for _ in range(10):
        clock.advance(1.0)
        result = sensor.sample(clock())
    assert by_gpu(result, catalog.GPU_ENERGY) == {"0": pytest.approx(3000.0), "1": pytest.approx(4500.0)}
    assert by_gpu(result, catalog.GPU_POWER) == {"0": 300.0, "1": 450.0}
    assert by_gpu(result, catalog.GPU_UTILIZATION)["1"] == pytest.approx(0.9)
    assert by_gpu(result, catalog.GPU_SM_CLOCK)["0"] == 1980e6
    assert by_gpu(result, catalog.GPU_UP) == {"0": 1, "1": 1}
    sources = {s.labels["source"] for s in result.samples if s.metric == catalog.GPU_ENERGY.name}
    assert sources == {"nvml_energy_counter"}
    assert not result.errors


def test_driver_reload_is_a_counted_reset(clock) -> None:
    nv = FakeNvml.with_gpus(1, watts=100.0, clock=clock)
    sensor = NvmlSensor(nv)
    sensor.sample(clock())
    clock.advance(100.0)
    sensor.sample(clock())  # 10 kJ since driver load
    nv.gpus[0].driver_reload()
    clock.advance(5.0)
    result = sensor.sample(clock())  # counter restarted: 500 J since
    assert by_gpu(result, catalog.GPU_ENERGY)["0"] == pytest.approx(10500.0)
    assert result.corrections[("nvml", nv.gpus[0].uuid)] == (0, 1)


def test_gpu_lost_mid_run_does_not_stop_the_others(clock) -> None:
    nv = FakeNvml.with_gpus(3, watts=200.0, clock=clock)
    sensor = NvmlSensor(nv, retry_lost_every=3)
    sensor.sample(clock())
    clock.advance(60.0)
    sensor.sample(clock())  # a minute of history: 12 kJ on each counter
    nv.gpus[1].lost = True
    clock.advance(1.0)
    result = sensor.sample(clock())
    assert result.errors == ["gpu_lost"]
    assert by_gpu(result, catalog.GPU_UP) == {"0": 1, "1": 0, "2": 1}
    energy = by_gpu(result, catalog.GPU_ENERGY)
    assert energy["0"] == pytest.approx(12200.0) and energy["2"] == pytest.approx(12200.0)
    assert energy["1"] == pytest.approx(12000.0)  # frozen at its last good value, still exported
    # The board comes back (same UUID) without a reset: its counter kept running, far above what
    # the power limit allows over the outage, so only the energy drawn meanwhile is added.
    nv.gpus[1].lost = False
    clock.advance(1.0)
    for _ in range(3):  # recovery is retried every third sample
        result = sensor.sample(clock())
    assert by_gpu(result, catalog.GPU_UP)["1"] == 1
    assert by_gpu(result, catalog.GPU_ENERGY)["1"] == pytest.approx(12400.0)
    assert result.corrections[("nvml", nv.gpus[1].uuid)] == (0, 0)


def test_gpu_back_from_lost_after_a_reset_counts_the_restarted_counter(clock) -> None:
    nv = FakeNvml.with_gpus(1, watts=200.0, clock=clock)
    sensor = NvmlSensor(nv, retry_lost_every=1)
    sensor.sample(clock())
    clock.advance(10.0)
    sensor.sample(clock())  # 2000 J counted
    nv.gpus[0].lost = True
    clock.advance(1.0)
    sensor.sample(clock())
    clock.advance(30.0)
    nv.gpus[0].lost = False
    nv.gpus[0].driver_reload()                            # the reset that brings a lost GPU back
    clock.advance(15.0)                                   # 3000 J since the reset: above the old raw
    result = sensor.sample(clock())
    assert by_gpu(result, catalog.GPU_ENERGY)["0"] == pytest.approx(5000.0)
    assert result.corrections[("nvml", nv.gpus[0].uuid)] == (0, 1)


def test_replaced_board_is_not_mixed_into_old_series(clock) -> None:
    nv = FakeNvml.with_gpus(1, watts=200.0, clock=clock)
    sensor = NvmlSensor(nv, retry_lost_every=1)
    sensor.sample(clock())
    nv.gpus[0].lost = True
    sensor.sample(clock())
    nv.gpus[0] = FakeGpu(uuid="GPU-new", clock=clock)
    result = sensor.sample(clock())
    assert by_gpu(result, catalog.GPU_UP)["0"] == 0


def test_no_energy_counter_falls_back_to_power_integration(clock) -> None:
    nv = FakeNvml([FakeGpu(uuid="GPU-pascal", name="Tesla P100", power_watts=150.0,
                           has_energy_counter=False, clock=clock)])
    sensor = NvmlSensor(nv)
    sensor.sample(clock())
    for _ in range(4):
        clock.advance(0.5)
        result = sensor.sample(clock())
    energy = [s for s in result.samples if s.metric == catalog.GPU_ENERGY.name][0]
    assert energy.value == pytest.approx(300.0)
    assert energy.labels["source"] == "nvml_power_integral"
    assert energy.labels["method"] == "measured"


def test_unsupported_getters_are_skipped_quietly(clock) -> None:
    nv = FakeNvml([FakeGpu(uuid="GPU-x", unsupported={"temperature", "clocks"}, clock=clock)])
    sensor = NvmlSensor(nv)
    sensor.sample(clock())
    result = sensor.sample(clock())
    names = {s.metric for s in result.samples}
    assert catalog.GPU_TEMPERATURE.name not in names and catalog.GPU_SM_CLOCK.name not in names
    assert catalog.GPU_POWER.name in names
    assert not result.errors
    calls = nv.calls
    sensor.sample(clock())
    assert nv.calls - calls < calls  # unsupported getters are not retried every sample


def test_mig_instances_are_reported(clock) -> None:
    migs = [FakeMig("MIG-a", 1, 0, 5 << 30), FakeMig("MIG-b", 2, 0, 7 << 30)]
    nv = FakeNvml([FakeGpu(uuid="GPU-mig", mig=migs, clock=clock)])
    result = NvmlSensor(nv).sample(clock())
    info = [s.labels for s in result.samples if s.metric == catalog.GPU_MIG_DEVICE.name]
    assert [(i["mig_uuid"], i["gpu_instance"]) for i in info] == [("MIG-a", "1"), ("MIG-b", "2")]
    gpu_info = [s.labels for s in result.samples if s.metric == catalog.GPU_INFO.name][0]
    assert gpu_info["mig_mode"] == "enabled"


def test_fake_library_missing() -> None:
    with pytest.raises(SensorUnavailable, match="NVML library not found"):
        NvmlSensor(FakeNvml(library_missing=True))


def test_real_pynvml_without_driver_is_unavailable_not_a_crash() -> None:
    try:
        sensor = NvmlSensor()  # the real nvidia-ml-py
    except SensorUnavailable as exc:
        assert "NVML" in str(exc) or "driver" in str(exc)
    else:  # pragma: no cover - only on a machine with a GPU
        sensor.close()


def test_no_gpus_is_unavailable() -> None:
    with pytest.raises(SensorUnavailable, match="no usable GPU"):
        NvmlSensor(FakeNvml([]))


@pytest.mark.parametrize("api, calls", [
    ("both", {"v": 3, "legacy": 0}),     # current drivers: the versioned call only
    ("legacy", {"v": 1, "legacy": 3}),   # drivers before nvmlDeviceGetTemperatureV: tried once, then the old call
    ("v", {"v": 3, "legacy": 0}),        # CUDA 14 drivers without nvmlDeviceGetTemperature
])
def test_temperature_through_the_versioned_call_with_a_fallback_for_older_drivers(clock, api: str,
                                                                                  calls: dict[str, int]) -> None:
    nv = FakeNvml([FakeGpu(uuid="GPU-t", temperature=61, clock=clock)], temperature_api=api)
    sensor = NvmlSensor(nv)
    for _ in range(3):
        result = sensor.sample(clock())
        assert by_gpu(result, catalog.GPU_TEMPERATURE) == {"0": 61} and not result.errors
    assert nv.temperature_calls == calls


def test_temperature_without_the_versioned_function_in_nvidia_ml_py(clock) -> None:
    """An nvidia-ml-py older than nvmlDeviceGetTemperatureV has no such attribute: the old call is used."""

    class OldBindings(FakeNvml):
        nvmlDeviceGetTemperatureV = None  # type: ignore[assignment]

    nv = OldBindings([FakeGpu(uuid="GPU-o", temperature=47, clock=clock)])
    result = NvmlSensor(nv).sample(clock())
    assert by_gpu(result, catalog.GPU_TEMPERATURE) == {"0": 47} and nv.temperature_calls["legacy"] == 1


def test_a_board_without_temperature_under_either_call_is_quietly_skipped(clock) -> None:
    nv = FakeNvml([FakeGpu(uuid="GPU-n", unsupported={"temperature"}, clock=clock)], temperature_api="legacy")
    sensor = NvmlSensor(nv)
    for _ in range(3):
        result = sensor.sample(clock())
    assert catalog.GPU_TEMPERATURE.name not in {s.metric for s in result.samples} and not result.errors
    assert nv.temperature_calls == {"v": 1, "legacy": 1}


def test_a_lost_gpu_during_the_temperature_call_is_still_lost(clock) -> None:
    nv = FakeNvml.with_gpus(1, clock=clock)
    sensor = NvmlSensor(nv)
    sensor.sample(clock())
    nv.gpus[0].lost = True
    result = sensor.sample(clock())
    assert "gpu_lost" in result.errors and by_gpu(result, catalog.GPU_UP) == {"0": 0}
