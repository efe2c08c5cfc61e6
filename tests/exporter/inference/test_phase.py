"""Marked phases: exact attribution from the fake GPUs' counters, ordering errors, and the path to the exporter."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from wattfleet.core import catalog
from wattfleet.exporter.inference import phase as phase_api
from wattfleet.exporter.inference.parsers import MARKED_ENERGY, parse_vllm
from wattfleet.exporter.inference.phase import PhaseError, PhaseTracker
from wattfleet.sim.fake_nvml import FakeNvml


def run(clock: Any, nvml: FakeNvml, watts: float, seconds: float) -> None:
    for gpu in nvml.gpus:
        gpu.set_power(watts)
    clock.advance(seconds)


def test_marked_phases_get_exactly_the_energy_drawn_during_them(clock: Any) -> None:
    nvml = FakeNvml.with_gpus(3, watts=70.0, clock=clock)
    tracker = PhaseTracker(nvml, gpus=[0, 2], clock=clock)
    truth = {"prefill": 0.0, "decode": 0.0, "idle": 0.0}

    def step(state: str, watts: float, seconds: float) -> None:
        before = nvml.gpus[0].true_joules() + nvml.gpus[2].true_joules()
        run(clock, nvml, watts, seconds)
        truth[state] += nvml.gpus[0].true_joules() + nvml.gpus[2].true_joules() - before

    step("idle", 70.0, 2.0)
    with tracker.phase("prefill"):
        step("prefill", 650.0, 0.125)
    tracker.begin("decode")
    step("decode", 380.0, 3.5)
    tracker.end("decode")
    step("idle", 90.0, 1.0)
    with tracker.phase("prefill"):
        step("prefill", 700.0, 0.3)
    got = tracker.joules()
    for state, j in truth.items():
        assert got[state] == pytest.approx(j, abs=0.002 * 3), state  # 1 mJ counter resolution per read
    assert truth["prefill"] == pytest.approx(2 * (650 * 0.125 + 700 * 0.3))
    assert tracker.seconds() == pytest.approx({"prefill": 0.425, "decode": 3.5, "idle": 3.0})
    assert tracker.active is None


def test_driver_reload_mid_phase_is_a_reset_not_negative_energy(clock: Any) -> None:
    """What flowed between the last read and the reload is gone from NVML; everything after it is kept."""
    nvml = FakeNvml.with_gpus(1, watts=100.0, clock=clock)
    tracker = PhaseTracker(nvml, clock=clock)
    with tracker.phase("decode"):
        run(clock, nvml, 400.0, 1.0)
        tracker.joules()                    # a read in the middle, then the counter restarts at 0
        run(clock, nvml, 400.0, 1.0)
        nvml.gpus[0].driver_reload()
        run(clock, nvml, 400.0, 0.5)
    assert tracker.joules()["decode"] == pytest.approx(400.0 * 1.0 + 400.0 * 0.5, abs=0.01)
    assert tracker._counters[0].resets == 1


def test_out_of_order_marks_are_errors(clock: Any) -> None:
    tracker = PhaseTracker(FakeNvml.with_gpus(1, clock=clock), clock=clock)
    with pytest.raises(PhaseError, match="running phase is None"):
        tracker.end("prefill")
    tracker.begin("prefill")
    with pytest.raises(PhaseError, match="while 'prefill' is running"):
        tracker.begin("decode")
    with pytest.raises(PhaseError):
        tracker.end("decode")
    tracker.end()
    with pytest.raises(ValueError, match="unknown phase 'idle'"):
        tracker.begin("idle")
    with pytest.raises(RuntimeError, match="boom"):
        with tracker.phase("decode"):
            raise RuntimeError("boom")
    assert tracker.active is None  # the context manager ends the phase on error too


def test_unreadable_gpu_is_counted_and_skipped(clock: Any) -> None:
    nvml = FakeNvml.with_gpus(2, watts=100.0, clock=clock)
    tracker = PhaseTracker(nvml, clock=clock)
    tracker.begin("prefill")
    run(clock, nvml, 200.0, 1.0)
    nvml.gpus[1].lost = True
    tracker.end()
    assert tracker.read_errors == 1
    assert tracker.joules()["prefill"] == pytest.approx(200.0, abs=0.01)  # GPU 0 only; GPU 1 unknown, not guessed


def test_module_level_api_uses_the_configured_tracker(clock: Any) -> None:
    nvml = FakeNvml.with_gpus(1, watts=100.0, clock=clock)
    tracker = phase_api.configure(nvml, clock=clock)
    try:
        with phase_api.phase("prefill"):
            run(clock, nvml, 500.0, 0.5)
        phase_api.begin("decode")
        run(clock, nvml, 300.0, 1.0)
        phase_api.end("decode")
        assert phase_api.tracker() is tracker
    finally:
        phase_api._default = None
    assert tracker.joules()["prefill"] == pytest.approx(250.0, abs=0.01)
    assert tracker.joules()["decode"] == pytest.approx(300.0, abs=0.01)


def test_collector_on_the_engine_page_reaches_the_exporter_parser(clock: Any) -> None:
    """Serving code registers the tracker; the exporter reads method="marked" off the engine's page."""
    nvml = FakeNvml.with_gpus(1, watts=100.0, clock=clock)
    tracker = PhaseTracker(nvml, clock=clock, model="m")
    with tracker.phase("prefill"):
        run(clock, nvml, 600.0, 0.25)
    registry = CollectorRegistry()
    registry.register(tracker)
    page = generate_latest(registry).decode()
    assert f'{catalog.INFERENCE_PHASE_ENERGY.series}{{method="marked",model="m",phase="prefill"}} 150.0' in page
    page += 'vllm:prompt_tokens_total{model_name="m"} 10.0\n'
    m = parse_vllm(page).models["m"]
    assert m.counters[(MARKED_ENERGY, "prefill")] == pytest.approx(150.0)
    assert m.counters[(MARKED_ENERGY, "idle")] == 0.0
