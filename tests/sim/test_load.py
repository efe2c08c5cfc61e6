"""Workload shapes of the fleet simulator: traces, inference bursts, expected power."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from wattfleet.sim.load import (
    GPU_MODELS,
    GpuWorkload,
    TraceError,
    TraceLoad,
    default_trace_path,
    gpu_model,
    hour_of_year,
    load_trace,
)

JAN1_2022 = 1640995200.0  # 2022-01-01T00:00:00Z


def test_the_shared_traces_load_as_hourly_loads_within_0_and_1() -> None:
    path = default_trace_path()
    if path is None or not path.exists():
        pytest.skip("shared workload traces not present")
    trace = load_trace(path)
    assert len(trace) > 8000
    assert all(0.0 <= v <= 1.0 for v in trace)
    google = path.with_name("GoogleClusteData_CPU_Data_Hourly_1.csv")
    assert len(load_trace(google)) == 8760


@pytest.mark.parametrize("body, message", [
    ("index,load\n0,0.5\n", "1: header must name a 'cpu_load' column"),
    (",cpu_load\n0,0.5\n1,abc\n", "3: field 'cpu_load' is not a number: 'abc'"),
    (",cpu_load\n0,0.5\n1,\n", "3: field 'cpu_load' is missing"),
    (",cpu_load\n0,1.5\n", "2: field 'cpu_load' must be within 0..1"),
    (",cpu_load\n", "no rows after the header"),
])
def test_a_malformed_trace_names_file_line_and_field(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(body)
    with pytest.raises(TraceError) as err:
        load_trace(path)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_a_missing_trace_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read workload trace"):
        load_trace(tmp_path / "absent.csv")


def test_hour_h_of_the_trace_plays_at_simulated_hour_h() -> None:
    trace = [i / 10 for i in range(10)]
    load = TraceLoad(trace)
    assert hour_of_year(JAN1_2022 + 7200) == 2.0
    assert load.at(JAN1_2022 + 3 * 3600) == pytest.approx(0.3)
    assert load.at(JAN1_2022 + 3.5 * 3600) == pytest.approx(0.35)   # interpolated between hours
    assert load.at(JAN1_2022 + 13 * 3600) == pytest.approx(0.3)     # the trace repeats
    assert TraceLoad(trace, offset_hours=2).at(JAN1_2022 + 3 * 3600) == pytest.approx(0.5)


def test_unknown_gpu_model_lists_the_known_ones() -> None:
    assert gpu_model("H100").tdp_watts == 700
    assert gpu_model("a100").tdp_watts == 400
    with pytest.raises(ValueError, match="a100, h100"):
        gpu_model("v100")


@pytest.mark.parametrize("key, load", [("h100", 0.2), ("h100", 0.7), ("a100", 0.5)])
def test_bursty_power_averages_to_the_load_and_stays_within_idle_and_tdp(key: str, load: float) -> None:
    model = GPU_MODELS[key]
    fine = GpuWorkload(model, TraceLoad([load]), random.Random(1))
    watts = [fine.advance(JAN1_2022 + i * 2.0, JAN1_2022 + (i + 1) * 2.0)[0] for i in range(90000)]  # 50 h
    mean_fine = sum(watts) / len(watts)
    assert min(watts) >= model.idle_watts * 0.85 and max(watts) <= model.tdp_watts
    assert max(watts) > model.idle_watts + 0.8 * model.span_watts     # prefill bursts near TDP
    assert sum(w < model.idle_watts * 1.15 for w in watts) > 0.2 * (1 - load) * len(watts)  # idle gaps
    coarse = GpuWorkload(model, TraceLoad([load]), random.Random(2))
    mean_coarse = sum(coarse.advance(JAN1_2022 + i * 60, JAN1_2022 + (i + 1) * 60)[0] for i in range(3000)) / 3000
    # 60 s steps use the phase mix's expected power: the same mean as walking every burst.
    assert mean_coarse == pytest.approx(mean_fine, rel=0.05)
    expected = model.idle_watts + load * model.span_watts * 0.5   # decode dominates busy time at ~50% span
    assert mean_fine == pytest.approx(expected, rel=0.12)


def test_the_same_seed_gives_the_same_power() -> None:
    a = GpuWorkload(GPU_MODELS["h100"], TraceLoad([0.5]), random.Random(7))
    b = GpuWorkload(GPU_MODELS["h100"], TraceLoad([0.5]), random.Random(7))
    assert [a.advance(i, i + 1.0) for i in range(200)] == [b.advance(i, i + 1.0) for i in range(200)]
