"""The fleet simulator in process: serving, ground truth, faults, file_sd and the CLI."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from wattfleet.cli import main
from wattfleet.core import catalog
from wattfleet.sim.simulator import Fault, Fleet, FleetConfig, parse_duration, parse_sites, write_backfill

JAN1_2022 = 1640995200.0


def _config(tmp_path: Path, **kw: object) -> FleetConfig:
    base: dict[str, object] = dict(nodes=3, gpus_per_node=2, interval=1.0, acceleration=10.0, start=JAN1_2022,
                                   workdir=tmp_path / "sim")
    base.update(kw)
    return FleetConfig(**base)  # type: ignore[arg-type]


def _values(body: bytes, series: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == series:
                out.append((s.labels, s.value))
    return out


def _one(body: bytes, series: str, **labels: str) -> float:
    hits = [v for lab, v in _values(body, series) if all(lab.get(k) == v2 for k, v2 in labels.items())]
    assert len(hits) == 1, (series, labels, hits)
    return hits[0]


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(_config(tmp_path, gpu_models=("h100", "a100")))
    yield f
    f.stop()


def test_nodes_get_sites_models_and_their_own_labels(fleet: Fleet) -> None:
    assert [(n.name, n.site, n.zone, n.model.key) for n in fleet.nodes] == [
        ("sim-0000", "dc-ciso", "CISO", "h100"), ("sim-0001", "dc-bpat", "BPAT", "a100"),
        ("sim-0002", "dc-miso", "MISO", "h100")]
    fleet.step(3)
    body = fleet.nodes[1].sampler.snapshot.body  # type: ignore[union-attr]
    limits = _values(body, catalog.GPU_POWER_LIMIT.series)
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
        cpu = sum(v for lab, v in _values(body, catalog.CPU_ENERGY.series)
                  if lab["domain"] in catalog.RAPL_IT_DOMAINS)
        assert cpu == pytest.approx(truth["cpu_joules"], rel=1e-6)


def test_the_same_seed_gives_the_same_fleet(tmp_path: Path) -> None:
    totals = []
    for run in range(2):
        with Fleet(_config(tmp_path, workdir=tmp_path / f"run{run}")) as f:
            f.step(20)
            totals.append(f.ground_truth())
    assert totals[0] == totals[1]


def test_paths_mode_serves_every_node_status_and_file_sd(fleet: Fleet, tmp_path: Path) -> None:
    fleet.serve()
    for node in fleet.nodes:
        body = urllib.request.urlopen(f"{fleet.url}/nodes/{node.name}/metrics", timeout=5).read()
        assert {lab["node"] for lab, _ in _values(body, catalog.GPU_UP.series)} == {node.name}
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
    with Fleet(_config(tmp_path)) as f:
        f.serve(mode="ports")
        ports = set()
        for name, address, labels in f.targets:
            assert labels == {}
            ports.add(address)
            body = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read()
            assert {lab["node"] for lab, _ in _values(body, catalog.GPU_UP.series)} == {name}
        assert len(ports) == 3


def test_faults_show_in_the_health_metrics(tmp_path: Path) -> None:
    faults = [Fault("gpu_lost", "0", gpu=1, at=20, duration=20),
              Fault("sensor_error", "1", sensor="nvml", gpu=0, at=5, duration=40),
              Fault("sensor_error", "sim-0002", sensor="rapl", at=5, duration=40),
              Fault("rapl_wrap_storm", "3"),
              Fault("exporter_restart", "4", at=405),
              Fault("clock_skew", "5", seconds=-90)]
    with Fleet(_config(tmp_path, nodes=6, faults=faults)) as f:
        f.step(4)   # 40 simulated seconds: GPU 1 of node 0 is lost, errors on nodes 1 and 2
        snap = {n.name: n.sampler.snapshot.body for n in f.nodes}  # type: ignore[union-attr]
        assert _one(snap["sim-0000"], catalog.GPU_UP.series, gpu="1") == 0
        assert _one(snap["sim-0000"], catalog.GPU_UP.series, gpu="0") == 1
        assert _one(snap["sim-0001"], catalog.COLLECTOR_ERRORS.series, collector="nvml", reason="nvml_error") == 4
        assert _one(snap["sim-0002"], catalog.COLLECTOR_ERRORS.series, collector="rapl", reason="read_error") == 4 * 4  # 4 zones
        assert _one(snap["sim-0002"], catalog.COLLECTOR_UP.series, collector="rapl") == 0
        assert _one(snap["sim-0005"], catalog.LAST_SAMPLE.series) == f.clock.now - 90
        f.step(36)  # the board is back (after a reset: NVML's counter restarted) at the sensor's 30th-sample retry
        snap = {n.name: n.sampler.snapshot.body for n in f.nodes}  # type: ignore[union-attr]
        assert _one(snap["sim-0000"], catalog.GPU_UP.series, gpu="1") == 1
        wraps = _values(snap["sim-0003"], catalog.COUNTER_WRAPS.series)
        assert sum(v for lab, v in wraps if lab["sensor"] == "rapl") > 10
        truth = f.ground_truth()
        # Wraps and the nodes whose sensors failed for a while lose no energy...
        for name in ("sim-0001", "sim-0002", "sim-0003"):
            cpu = sum(v for lab, v in _values(snap[name], catalog.CPU_ENERGY.series)
                      if lab["domain"] in catalog.RAPL_IT_DOMAINS)
            assert cpu == pytest.approx(truth[name]["cpu_joules"], rel=1e-6)
            assert truth[name]["exporter_gpu_joules"] == pytest.approx(truth[name]["gpu_joules"], rel=1e-6)
        before = f.nodes[4].exporter_gpu_joules()
        f.step(1)   # ...while a restarted exporter starts its counters from 0
        assert f.nodes[4].restarts == 1
        assert f.nodes[4].exporter_gpu_joules() == 0 < before


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
    assert parse_duration("500ms") == 0.5 and parse_duration("30d") == 30 * 86400
    assert parse_sites("CISO,west:BPAT") == (("dc-ciso", "CISO"), ("west", "BPAT"))


def test_faults_on_unknown_nodes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="node index 7 out of range"):
        Fleet(_config(tmp_path, faults=[Fault("gpu_lost", "7")]))
    with pytest.raises(ValueError, match="no node named 'x'"):
        Fleet(_config(tmp_path, faults=[Fault("gpu_lost", "x")]))


def test_backfill_writes_contiguous_families_with_timestamps(tmp_path: Path) -> None:
    out = tmp_path / "fleet.om"
    summary = write_backfill(_config(tmp_path, workdir=None), out, span=3600, step=300, end=JAN1_2022 + 7200)
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


def test_cli_rejects_bad_input_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--fault", "gpu_lost:gpu=1"]) == 2
    assert "field 'node' is required" in capsys.readouterr().err
    assert main(["simulate", "--gpu-models", "v100"]) == 2
    assert "unknown GPU model 'v100'" in capsys.readouterr().err


def test_cli_backfill(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b.om"
    assert main(["simulate", "--nodes", "2", "--gpus-per-node", "1", "--backfill-openmetrics", str(out),
                 "--span", "1h", "--step", "5m", "--end", "2022-03-01T00:00:00Z", "--with-corrections"]) == 0
    text = out.read_text()
    assert catalog.COUNTER_WRAPS.series in text and text.endswith("# EOF\n")
    assert "promtool tsdb create-blocks-from openmetrics" in capsys.readouterr().out


def _gpu_joules(fleet: Fleet, node: int, gpu: int) -> float:
    result = fleet.nodes[node].sampler.last_results["nvml"]
    return next(s.value for s in result.samples
                if s.metric == catalog.GPU_ENERGY.name and s.labels["gpu"] == str(gpu))


def test_a_gpu_back_from_lost_counts_its_restarted_nvml_counter_from_zero(tmp_path: Path) -> None:
    with Fleet(_config(tmp_path, nodes=1, faults=[Fault("gpu_lost", "0", gpu=0, at=15, duration=10)])) as f:
        f.step(1)
        before = _gpu_joules(f, 0, 0)   # last good sample, t=10
        f.step(60)                      # lost at 20, reset at 30, back at the 30th sample, then 300 s more
        assert f.nodes[0].gpus[0].counter_mj() / 1000 > before   # the restarted counter overtook the old raw
        # Best possible: what was counted before the loss plus everything NVML counted since the reset.
        assert _gpu_joules(f, 0, 0) == pytest.approx(before + f.nodes[0].gpus[0].counter_mj() / 1000, rel=1e-6)


def test_backfill_replicas_write_each_node_under_distinct_names_with_its_truth(tmp_path: Path) -> None:
    out = tmp_path / "fleet.om"
    cfg = _config(tmp_path, nodes=2, gpus_per_node=1, workdir=None)
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


@pytest.mark.parametrize("extra, message", [
    (["--replicas", "0"], "--replicas must be at least 1"),
    (["--step", "2h"], "no longer than --span"),
])
def test_cli_backfill_rejects_bad_replicas_and_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     extra: list[str], message: str) -> None:
    args = ["simulate", "--nodes", "1", "--backfill-openmetrics", str(tmp_path / "x.om"), "--span", "1h", *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err
