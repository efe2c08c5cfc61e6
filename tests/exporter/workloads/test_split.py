"""The split formulas hand out exactly the joules they are given."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wattfleet.exporter.workloads.split import split_cpu, split_device

joules = st.floats(0, 1e7, allow_nan=False)
weights = st.dictionaries(st.sampled_from("abcdef"), st.floats(-1, 8), max_size=6)


@given(joules, st.lists(weights, max_size=7))
def test_device_parts_add_up(j: float, slots: list[dict[str, float]]) -> None:
    out = split_device(j, slots)
    assert all(v >= 0 for v in out.holders.values()) and out.unallocated >= 0
    assert sum(out.holders.values()) + out.unallocated == pytest.approx(j, rel=1e-12, abs=1e-9)


@given(joules, st.floats(-0.5, 1.5), st.floats(0, 1e4), st.dictionaries(st.sampled_from("abcdef"), st.floats(-5, 1e4)))
def test_cpu_parts_add_up(j: float, ratio: float, busy: float, usage: dict[str, float]) -> None:
    out = split_cpu(j, ratio, busy, usage)
    assert all(v >= 0 for v in out.workloads.values()) and out.idle >= 0 and out.system >= 0
    assert sum(out.workloads.values()) + out.idle + out.system == pytest.approx(j, rel=1e-12, abs=1e-9)


def test_time_slicing_by_replicas_and_mig_equally() -> None:
    out = split_device(300.0, [{"a": 1, "b": 2}])
    assert out.holders == {"a": pytest.approx(100.0), "b": pytest.approx(200.0)} and out.unallocated == 0
    out = split_device(300.0, [{"a": 1}, {}, {"b": 1}])
    assert out.holders == {"a": pytest.approx(100.0), "b": pytest.approx(100.0)}
    assert out.unallocated == pytest.approx(100.0)
    assert split_device(50.0, []).unallocated == 50.0


def test_cpu_idle_system_and_workloads() -> None:
    out = split_cpu(100.0, 0.5, 4.0, {"a": 3.0, "b": 0.0})
    assert out.idle == pytest.approx(50.0)
    assert out.workloads == {"a": pytest.approx(37.5)}
    assert out.system == pytest.approx(12.5)
    # Workloads read as more than the node (the two clocks drift): their total is the denominator.
    out = split_cpu(100.0, 1.0, 4.0, {"a": 3.0, "b": 2.0})
    assert out.workloads == {"a": pytest.approx(60.0), "b": pytest.approx(40.0)} and out.system == 0
    assert split_cpu(100.0, 0.0, 0.0, {"a": 1.0}).idle == 100.0
