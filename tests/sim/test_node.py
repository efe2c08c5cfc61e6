"""A simulated node under faults: health metrics, lost and returning GPUs, exporter restarts with and without state."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_fixtures import fleet_config, one_value, series_values

from wattfleet.core import catalog
from wattfleet.sim.config import FleetConfig
from wattfleet.sim.faults import Fault
from wattfleet.sim.fleet import Fleet


def test_faults_show_in_the_health_metrics(tmp_path: Path) -> None:
    faults = [Fault("gpu_lost", "0", gpu=1, at=20, duration=20),
              Fault("sensor_error", "1", sensor="nvml", gpu=0, at=5, duration=40),
              Fault("sensor_error", "sim-0002", sensor="rapl", at=5, duration=40),
              Fault("rapl_wrap_storm", "3"),
              Fault("exporter_restart", "4", at=405),
              Fault("clock_skew", "5", seconds=-90)]
    with Fleet(fleet_config(tmp_path, nodes=6, faults=faults)) as f:
        f.step(4)   # 40 simulated seconds: GPU 1 of node 0 is lost, errors on nodes 1 and 2
        snap = {n.name: n.sampler.snapshot.body for n in f.nodes}  # type: ignore[union-attr]
        assert one_value(snap["sim-0000"], catalog.GPU_UP.series, gpu="1") == 0
        assert one_value(snap["sim-0000"], catalog.GPU_UP.series, gpu="0") == 1
        assert one_value(snap["sim-0001"], catalog.COLLECTOR_ERRORS.series, collector="nvml", reason="nvml_error") == 4
        assert one_value(snap["sim-0002"], catalog.COLLECTOR_ERRORS.series, collector="rapl",
                         reason="read_error") == 4 * 4  # 4 zones
        assert one_value(snap["sim-0002"], catalog.COLLECTOR_UP.series, collector="rapl") == 0
        assert one_value(snap["sim-0005"], catalog.LAST_SAMPLE.series) == f.clock.now - 90
        f.step(36)  # the board is back (after a reset: NVML's counter restarted) at the sensor's 30th-sample retry
        snap = {n.name: n.sampler.snapshot.body for n in f.nodes}  # type: ignore[union-attr]
        assert one_value(snap["sim-0000"], catalog.GPU_UP.series, gpu="1") == 1
        wraps = series_values(snap["sim-0003"], catalog.COUNTER_WRAPS.series)
        assert sum(v for lab, v in wraps if lab["sensor"] == "rapl") > 10
        truth = f.ground_truth()
        # Wraps and the nodes whose sensors failed for a while lose no energy...
        for name in ("sim-0001", "sim-0002", "sim-0003"):
            cpu = sum(v for lab, v in series_values(snap[name], catalog.CPU_ENERGY.series)
                      if lab["domain"] in catalog.RAPL_IT_DOMAINS)
            assert cpu == pytest.approx(truth[name]["cpu_joules"], rel=1e-6)
            assert truth[name]["exporter_gpu_joules"] == pytest.approx(truth[name]["gpu_joules"], rel=1e-6)
        before = f.nodes[4].exporter_gpu_joules()
        f.step(1)   # ...while a restarted exporter starts its counters from 0
        assert f.nodes[4].restarts == 1
        assert f.nodes[4].exporter_gpu_joules() == 0 < before


def _gpu_joules(fleet: Fleet, node: int, gpu: int) -> float:
    result = fleet.nodes[node].sampler.last_results["nvml"]
    return next(s.value for s in result.samples
                if s.metric == catalog.GPU_ENERGY.name and s.labels["gpu"] == str(gpu))


def test_a_gpu_back_from_lost_counts_its_restarted_nvml_counter_from_zero(tmp_path: Path) -> None:
    with Fleet(fleet_config(tmp_path, nodes=1, faults=[Fault("gpu_lost", "0", gpu=0, at=15, duration=10)])) as f:
        f.step(1)
        before = _gpu_joules(f, 0, 0)   # last good sample, t=10
        f.step(60)                      # lost at 20, reset at 30, back at the 30th sample, then 300 s more
        assert f.nodes[0].gpus[0].counter_mj() / 1000 > before   # the restarted counter overtook the old raw
        # Best possible: what was counted before the loss plus everything NVML counted since the reset.
        assert _gpu_joules(f, 0, 0) == pytest.approx(before + f.nodes[0].gpus[0].counter_mj() / 1000, rel=1e-6)


@pytest.mark.parametrize("mode", ["none", "file"])
def test_simulated_restart_with_a_state_file_is_lossless(mode: str) -> None:
    faults = [Fault.parse(f"exporter_restart:node=0,at={m}m,state={mode}") for m in (5, 9)]
    config = FleetConfig(nodes=2, gpus_per_node=2, interval=1.0, acceleration=60.0, start=1_656_633_600.0,
                         faults=faults)
    with Fleet(config, render=False) as fleet:
        fleet.step(15)
        restarted, clean = fleet.nodes
        assert restarted.restarts == 2 and (restarted.state_path is not None) == (mode == "file")
        # The other node is the fault-free reference: its counters equal the truth.
        assert clean.exporter_gpu_joules() == pytest.approx(clean.true_gpu_joules(), abs=1e-2)
        if mode == "file":
            assert restarted.exporter_gpu_joules() == pytest.approx(restarted.true_gpu_joules(), abs=1e-2)
        else:  # counters restarted at 0 at the second restart: only the last 6 minutes
            assert restarted.exporter_gpu_joules() < 0.5 * restarted.true_gpu_joules()
