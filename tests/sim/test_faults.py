"""Fault specs as ``--fault`` takes them, and faults matched to the fleet's nodes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_fixtures import fleet_config

from wattfleet.sim.faults import Fault
from wattfleet.sim.fleet import Fleet


@pytest.mark.parametrize("spec, message", [
    ("meltdown:node=1", "fault kind 'meltdown' unknown"),
    ("gpu_lost:gpu=1", "field 'node' is required"),
    ("gpu_lost:node=1,gpu=x", "invalid literal"),
    ("gpu_lost:node=1,at=soon", "fault field 'at' 'soon' must look like"),
    ("sensor_error:node=1,sensor=disk", "'sensor' must be nvml or rapl"),
    ("gpu_lost:node=1,colour=red", "unknown field 'colour'"),
    ("gpu_lost:node=1,for", "must be key=value"),
])
def test_bad_fault_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fault.parse(spec)


def test_fault_spec_fields() -> None:
    f = Fault.parse("gpu_lost:node=sim-0003,gpu=2,at=1h,for=90s")
    assert (f.kind, f.node, f.gpu, f.at, f.duration) == ("gpu_lost", "sim-0003", 2, 3600, 90)


def test_fault_state_field_is_checked() -> None:
    assert Fault.parse("exporter_restart:node=1,at=1h,state=file").state is True
    with pytest.raises(ValueError, match="field 'state' must be file or none"):
        Fault.parse("exporter_restart:node=1,state=disk")


def test_faults_on_unknown_nodes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="node index 7 out of range"):
        Fleet(fleet_config(tmp_path, faults=[Fault("gpu_lost", "7")]))
    with pytest.raises(ValueError, match="no node named 'x'"):
        Fleet(fleet_config(tmp_path, faults=[Fault("gpu_lost", "x")]))
