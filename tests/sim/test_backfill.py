"""The OpenMetrics backfill: contiguous families with timestamps, replicas, and the ground truth it reports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sim_fixtures import JAN1_2022, fleet_config

from wattfleet.core import catalog
from wattfleet.sim.backfill import write_backfill


def test_backfill_writes_contiguous_families_with_timestamps(tmp_path: Path) -> None:
    out = tmp_path / "fleet.om"
    summary = write_backfill(fleet_config(tmp_path, workdir=None), out, span=3600, step=300, end=JAN1_2022 + 7200)
    lines = out.read_text().splitlines()
    assert lines[-1] == "# EOF" and summary.steps == 12
    types = [ln.split()[2] for ln in lines if ln.startswith("# TYPE")]
    assert types == [catalog.GPU_ENERGY.name, catalog.CPU_ENERGY.name, catalog.COLLECTOR_ERRORS.name]
    gpu = [ln for ln in lines if ln.startswith(catalog.GPU_ENERGY.series + "{")]
    assert len(gpu) == 13 * 3 * 2
    first_ts = {float(ln.rsplit(" ", 1)[1]) for ln in gpu}
    assert min(first_ts) == JAN1_2022 + 3600 and max(first_ts) == JAN1_2022 + 7200
    last = {ln.rsplit(" ", 2)[0]: float(ln.rsplit(" ", 2)[1]) for ln in gpu}
    assert sum(last.values()) == pytest.approx(sum(summary.true_gpu_joules.values()), rel=1e-6)
    assert not list(tmp_path.glob("fleet.om.*"))   # spool files cleaned up


def test_backfill_replicas_write_each_node_under_distinct_names_with_its_truth(tmp_path: Path) -> None:
    out = tmp_path / "fleet.om"
    cfg = fleet_config(tmp_path, nodes=2, gpus_per_node=1, workdir=None)
    summary = write_backfill(cfg, out, span=600, step=300, end=JAN1_2022 + 3600, replicas=3)
    gpu = [ln for ln in out.read_text().splitlines() if ln.startswith(catalog.GPU_ENERGY.series + "{")]
    assert len(gpu) == 3 * 2 * 3                      # samples x nodes x replicas
    last: dict[str, float] = {}
    uuids: set[str] = set()
    for line in gpu:                                  # samples come in time order
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        last[labels["node"]] = float(line.rsplit(" ", 2)[1])
        uuids.add(labels["uuid"])
    assert sorted(last) == ["sim-0000", "sim-0000-r001", "sim-0000-r002", "sim-0001", "sim-0001-r001",
                            "sim-0001-r002"]
    assert len(uuids) == 6                            # a replica's board is another board
    assert last["sim-0001-r002"] == last["sim-0001"] > 0
    assert summary.gpus == 6 and summary.nodes == 6 and summary.true_gpu_joules.keys() == last.keys()
    assert summary.true_gpu_joules["sim-0000-r001"] == summary.true_gpu_joules["sim-0000"]
