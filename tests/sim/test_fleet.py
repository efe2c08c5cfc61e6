"""The fleet in process: nodes and their labels, ground truth, reproducibility, HTTP serving and file_sd."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sim_fixtures import fleet_config, series_values

from wattfleet.core import catalog
from wattfleet.sim.fleet import Fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(fleet_config(tmp_path, gpu_models=("h100", "a100")))
    yield f
    f.stop()


def test_nodes_get_sites_models_and_their_own_labels(fleet: Fleet) -> None:
    assert [(n.name, n.site, n.zone, n.model.key) for n in fleet.nodes] == [
        ("sim-0000", "dc-ciso", "CISO", "h100"), ("sim-0001", "dc-bpat", "BPAT", "a100"),
        ("sim-0002", "dc-miso", "MISO", "h100")]
    fleet.step(3)
    body = fleet.nodes[1].sampler.snapshot.body  # type: ignore[union-attr]
    limits = series_values(body, catalog.GPU_POWER_LIMIT.series)
    assert {lab["node"] for lab, _ in limits} == {"sim-0001"}
    assert {lab["site"] for lab, _ in limits} == {"dc-bpat"}
    assert {v for _, v in limits} == {400.0}


def test_exporter_counters_equal_ground_truth(fleet: Fleet) -> None:
    fleet.step(50)
    for name, truth in fleet.ground_truth().items():
        assert truth["gpu_joules"] > 0
        assert truth["exporter_gpu_joules"] == pytest.approx(truth["gpu_joules"], rel=1e-6, abs=0.01)
        node = fleet.by_name[name]
        body = node.sampler.snapshot.body  # type: ignore[union-attr]
        cpu = sum(v for lab, v in series_values(body, catalog.CPU_ENERGY.series)
                  if lab["domain"] in catalog.RAPL_IT_DOMAINS)
        assert cpu == pytest.approx(truth["cpu_joules"], rel=1e-6)


def test_the_same_seed_gives_the_same_fleet(tmp_path: Path) -> None:
    totals = []
    for run in range(2):
        with Fleet(fleet_config(tmp_path, workdir=tmp_path / f"run{run}")) as f:
            f.step(20)
            totals.append(f.ground_truth())
    assert totals[0] == totals[1]


def test_paths_mode_serves_every_node_status_and_file_sd(fleet: Fleet, tmp_path: Path) -> None:
    fleet.serve()
    for node in fleet.nodes:
        body = urllib.request.urlopen(f"{fleet.url}/nodes/{node.name}/metrics", timeout=5).read()
        assert {lab["node"] for lab, _ in series_values(body, catalog.GPU_UP.series)} == {node.name}
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{fleet.url}/nodes/nope/metrics", timeout=5)
    assert err.value.code == 404
    status = json.load(urllib.request.urlopen(f"{fleet.url}/sim/status", timeout=5))
    assert status["nodes"] == 3 and status["gpus"] == 6 and status["sites"]["dc-miso"] == "MISO"
    fleet.dump_file_sd(tmp_path / "sd.json")
    sd = json.loads((tmp_path / "sd.json").read_text())
    port = fleet.url.rsplit(":", 1)[1]
    assert sd[2] == {"targets": [f"127.0.0.1:{port}"],
                     "labels": {"__metrics_path__": "/nodes/sim-0002/metrics", "instance": "sim-0002"}}


def test_ports_mode_gives_each_node_its_own_exporter_server(tmp_path: Path) -> None:
    with Fleet(fleet_config(tmp_path)) as f:
        f.serve(mode="ports")
        ports = set()
        for name, address, labels in f.targets:
            assert labels == {}
            ports.add(address)
            body = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read()
            assert {lab["node"] for lab, _ in series_values(body, catalog.GPU_UP.series)} == {name}
        assert len(ports) == 3
