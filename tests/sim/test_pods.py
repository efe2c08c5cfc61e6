"""Simulated pods (FleetConfig pods=True): the exporter's workload collector splits each node's energy by pod."""

from __future__ import annotations

import random
import urllib.request
from pathlib import Path

import pytest
from sim_fixtures import fleet_config, series_values

from wattfleet.core import catalog
from wattfleet.sim.fleet import Fleet

pytest.importorskip("grpc", reason="the kubernetes extra (grpcio, protobuf) is not installed")

from wattfleet.sim.pods import node_pods  # noqa: E402 - needs grpc, skipped above without it


def test_pods_are_seeded_and_leave_gpus_free() -> None:
    first = node_pods(0, 4, random.Random("pods/7/node-0000"))
    assert first == node_pods(0, 4, random.Random("pods/7/node-0000"))
    assert first != node_pods(0, 4, random.Random("pods/8/node-0000"))
    by_workload = {(p.namespace, p.workload): p.gpus for p in first}
    assert by_workload == {("research-nlp", "deployment/train"): (0, 1), ("search", "deployment/web"): (2,),
                           ("batch", "job/hparam-sweep"): (3,), ("monitoring", "daemonset/node-exporter"): ()}
    odd = {(p.namespace, p.workload): p.gpus for p in node_pods(1, 8, random.Random(1))}
    assert odd == {("research-vision", "deployment/train"): (0, 1), ("search", "deployment/web"): (2,),
                   ("monitoring", "daemonset/node-exporter"): ()}  # GPUs 3..7 held by no pod
    train = first[0]
    assert train.name.startswith(f"train-{train.labels['pod-template-hash']}-")


def _page(fleet: Fleet, node: str) -> bytes:
    with urllib.request.urlopen(f"{fleet.url}/nodes/{node}/metrics", timeout=10) as resp:
        body: bytes = resp.read()
    return body


def _device_energy(body: bytes) -> dict[str, float]:
    out = {"gpu": sum(v for _, v in series_values(body, catalog.GPU_ENERGY.series)), "cpu": 0.0, "dram": 0.0}
    for labels, v in series_values(body, catalog.CPU_ENERGY.series):
        if labels["domain"] in ("package", "dram"):
            out["cpu" if labels["domain"] == "package" else "dram"] += v
    return out


def test_fleet_pods_publish_workload_series_that_add_up(tmp_path: Path) -> None:
    cfg = fleet_config(tmp_path, nodes=2, gpus_per_node=4, acceleration=900.0, seed=3, pods=True)
    with Fleet(cfg) as fleet, Fleet(fleet_config(tmp_path / "plain", nodes=2, gpus_per_node=4, acceleration=900.0,
                                                 seed=3)) as plain:
        fleet.serve()
        fleet.step(6)
        plain.step(6)
        # Pods split the same energy: the fleet's draws do not depend on them.
        assert fleet.ground_truth() == plain.ground_truth()
        for node in ("sim-0000", "sim-0001"):
            body = _page(fleet, node)
            rows = series_values(body, catalog.WORKLOAD_ENERGY.series)
            named = {(lb["component"], lb["namespace"], lb["workload"]) for lb, v in rows
                     if lb["share"] == catalog.SHARE_WORKLOAD and v > 0}
            research = "research-nlp" if node == "sim-0000" else "research-vision"
            assert ("gpu", research, "deployment/train") in named
            assert ("gpu", "search", "deployment/web") in named
            assert ("cpu", "monitoring", "daemonset/node-exporter") in named
            assert (("gpu", "batch", "job/hparam-sweep") in named) == (node == "sim-0000")
            shares = {(lb["component"], lb["share"]) for lb, v in rows if v > 0}
            assert {("cpu", "idle"), ("cpu", "system"), ("dram", "idle")} <= shares
            assert (("gpu", "unallocated") in shares) == (node == "sim-0001")  # its 4th GPU: no batch job
            # The kubelet, the cgroup tree and the API server (pods and the batch Job) all answered.
            errors = [(lb["reason"], v) for lb, v in series_values(body, catalog.COLLECTOR_ERRORS.series)
                      if lb["collector"] == "workload" and v > 0]
            assert errors == [], errors
            # Per component, the workload series add up to the node's measured energy (the contract's invariant).
            device = _device_energy(body)
            for component, joules in device.items():
                attributed = sum(v for lb, v in rows if lb["component"] == component)
                assert attributed == pytest.approx(joules, rel=1e-9), (node, component)
