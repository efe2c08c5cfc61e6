"""Pod owners from the (fake) Kubernetes API server: the owner rule, the reader's bounds, the sensor's labels."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tls_fixtures import self_signed

from paths import FIXTURES
from wattfleet.exporter.workloads import attach
from wattfleet.exporter.workloads.devices import DeviceHolder
from wattfleet.exporter.workloads.owners import (
    OwnersUnavailable,
    PodOwnerReader,
    in_cluster_reader,
    owner_of,
    parse_pod_list,
)
from wattfleet.sim.fake_apiserver import FakeApiServer, pod
from workload_fixtures import FakeNode, MemoryLister

POD_LIST = FIXTURES / "kubernetes" / "pod_list.json"
EXPECTED = {
    ("shop", "web-7d4b9c8f6-x2x9z"): "deployment/web",        # ReplicaSet web-<pod-template-hash>
    ("shop", "batch-rs-abcde"): "replicaset/batch-rs",        # a ReplicaSet without the hash label: no guess
    ("db", "pg-0"): "statefulset/pg",
    ("gpu-operator", "dcgm-abcde"): "daemonset/dcgm",
    ("ml", "nightly-29001234-q8w7e"): "job/nightly-29001234",  # the CronJob is not knowable from the pod
    ("default", "debug"): "pod/debug",                        # no owner
    ("default", "adopted"): "pod/adopted",                    # an owner reference that is not the controller
    ("ml", "vllm-0"): "leaderworkerset/vllm",                 # other controllers: kind lower-cased
}


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    server = FakeApiServer(json.loads(POD_LIST.read_text())["items"] + [pod("shop", "elsewhere", "node-b")])
    yield server
    server.close()


def reader(api: FakeApiServer, tmp_path: Path, timeout: float = 2.0, max_bytes: int = 1 << 20,
           node: str = "node-a") -> PodOwnerReader:
    token = tmp_path / "token"
    token.write_text(api.token + "\n")
    return PodOwnerReader(api.url, node, token, None, timeout=timeout, max_bytes=max_bytes)


def test_owner_rule_on_the_api_fixture() -> None:
    assert parse_pod_list(POD_LIST.read_bytes()) == EXPECTED


def test_replicaset_whose_name_does_not_end_in_the_hash_stays_a_replicaset() -> None:
    p = pod("a", "x-1", "n", owner=("ReplicaSet", "x-abc"), labels={"pod-template-hash": "zzz"})
    assert owner_of(p) == "replicaset/x-abc"
    assert owner_of(pod("a", "x-1", "n", owner=("ReplicaSet", "-abc"), labels={"pod-template-hash": "abc"})) \
        == "replicaset/-abc"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"kind": "Pod", "items": []}', b'{"kind": "PodList"}'])
def test_not_a_pod_list_is_invalid(body: bytes) -> None:
    with pytest.raises(OwnersUnavailable) as err:
        parse_pod_list(body)
    assert err.value.reason == "apiserver_invalid"


def test_reader_lists_this_nodes_pods_with_the_token(api: FakeApiServer, tmp_path: Path) -> None:
    assert reader(api, tmp_path).read() == EXPECTED
    assert api.paths[-1] == "/api/v1/pods?fieldSelector=spec.nodeName=node-a"
    (tmp_path / "token").write_text("wrong")
    with pytest.raises(OwnersUnavailable) as err:
        PodOwnerReader(api.url, "node-a", tmp_path / "token", None).read()
    assert err.value.reason == "apiserver_unavailable" and "401" in str(err.value)


def test_reader_over_https_checks_the_ca(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server = FakeApiServer([pod("a", "p", "node-a", owner=("DaemonSet", "d"))], tls=(cert, key))
    try:
        token = tmp_path / "token"
        token.write_text(server.token)
        assert PodOwnerReader(server.url, "node-a", token, cert).read() == {("a", "p"): "daemonset/d"}
        with pytest.raises(OwnersUnavailable) as err:   # the system CAs do not know this certificate
            PodOwnerReader(server.url, "node-a", token, None).read()
        assert err.value.reason == "apiserver_unavailable"
    finally:
        server.close()


@pytest.mark.parametrize("fault,reason", [("down", "apiserver_unavailable"), ("slow", "apiserver_timeout"),
                                          ("drip", "apiserver_timeout"), ("big", "apiserver_oversized"),
                                          ("big_chunked", "apiserver_oversized")])
def test_reader_faults_are_bounded_and_named(api: FakeApiServer, tmp_path: Path, fault: str, reason: str) -> None:
    if fault == "down":
        api.down = True
    elif fault == "slow":
        api.delay = 0.6
    elif fault == "drip":
        api.drip, api.pad_bytes = 0.05, 20_000   # each 1 KiB piece in time, the whole answer (~1 s) not
    else:
        api.pad_bytes = 2 << 20
        api.drip = 0.0001 if fault == "big_chunked" else 0.0   # no Content-Length: the cap counts bytes read
    with pytest.raises(OwnersUnavailable) as err:
        reader(api, tmp_path, timeout=0.3).read()
    assert err.value.reason == reason


def test_unreachable_api_server_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t")
    with pytest.raises(OwnersUnavailable) as err:
        PodOwnerReader("http://127.0.0.1:9", "n", tmp_path / "token", None, timeout=0.5).read()
    assert err.value.reason == "apiserver_unavailable"


def test_in_cluster_config(tmp_path: Path) -> None:
    assert in_cluster_reader("node-a", 1.0, environ={}, account_dir=tmp_path) is None
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster_reader("node-a", 1.0, environ=env, account_dir=tmp_path) is None   # no token file
    (tmp_path / "token").write_text("t")
    assert in_cluster_reader("", 1.0, environ=env, account_dir=tmp_path) is None         # no node name
    r = in_cluster_reader("node-a", 1.0, environ=env, account_dir=tmp_path)
    assert r is not None and r.url.geturl() == "https://10.96.0.1:443" and r.token_file == tmp_path / "token"


def test_flag_turns_owners_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = argparse.ArgumentParser()
    attach.add_arguments(p)
    monkeypatch.setattr(attach, "in_cluster_reader", lambda node, timeout: "reader")
    args = p.parse_args(["--workload-cgroups", "kubernetes", "--kubelet.pod-resources-socket", "",
                         "--kubernetes.node-name", "node-a"])
    assert attach.build_workload_sensor(args).owners == "reader"
    args = p.parse_args(["--workload-cgroups", "kubernetes", "--kubelet.pod-resources-socket", "",
                         "--no-kubernetes.pod-owners"])
    assert attach.build_workload_sensor(args).owners is None
    with pytest.raises(attach.WorkloadConfigError):
        attach.build_workload_sensor(p.parse_args(["--workload-cgroups", "kubernetes",
                                                   "--kubernetes.pods-refresh-interval", "0"]))


def test_sensor_labels_pods_with_owners_and_keeps_them_through_faults(api: FakeApiServer, tmp_path: Path) -> None:
    lister = MemoryLister([DeviceHolder("shop", "web-7d4b9c8f6-x2x9z", "main", "nvidia.com/gpu", "GPU-0000"),
                           DeviceHolder("ml", "nightly-29001234-q8w7e", "train", "nvidia.com/gpu", "GPU-0001"),
                           DeviceHolder("ml", "unknown-pod", "main", "nvidia.com/gpu", "GPU-0002")])
    node = FakeNode(tmp_path / "node", gpus=4, lister=lister, cgroup_specs=(),
                    owners=reader(api, tmp_path, timeout=0.3), owners_refresh=2.0)
    try:
        for fault in (None, "down", "slow", "big", None):
            api.down, api.delay, api.pad_bytes = fault == "down", 0.6 if fault == "slow" else 0.0, \
                (2 << 20) if fault == "big" else 0
            node.step()
            node.step()
            got = node.published()
            # the owners of the first answer stay through every fault
            assert got[("gpu", "workload", "shop", "web-7d4b9c8f6-x2x9z", "main", "deployment/web")] > 0
            assert got[("gpu", "workload", "ml", "nightly-29001234-q8w7e", "train", "job/nightly-29001234")] > 0
            assert got[("gpu", "workload", "ml", "unknown-pod", "main", "")] > 0   # not in the list: unknown
            measured, attributed = node.measured_since_start(), node.attributed()
            assert attributed["gpu"] == pytest.approx(measured["gpu"], rel=1e-9)
        for reason in ("apiserver_unavailable", "apiserver_timeout", "apiserver_oversized"):
            assert node.sampler.errors[("workload", reason)] == 1, reason
        assert node.sampler.readiness()[0]
    finally:
        node.close()


def test_cpu_and_dram_pod_series_carry_owners_and_still_add_up(api: FakeApiServer, tmp_path: Path) -> None:
    node = FakeNode(tmp_path / "node", gpus=1, lister=None, cgroup_specs=("kubernetes",),
                    owners=reader(api, tmp_path), owners_refresh=2.0)
    try:
        web = node.tree.add_pod("shop", "web-7d4b9c8f6-x2x9z", "1111-2222")
        pg = node.tree.add_pod("db", "pg-0", "3333-4444")
        rel = {c.path: r for r, c in node.tree.cgroups.items()}
        for _ in range(4):
            node.step({rel[web.path]: 2.0, rel[pg.path]: 1.0}, system_seconds=0.5)
        got = node.published()
        for component in ("cpu", "dram"):
            assert got[(component, "workload", "shop", "web-7d4b9c8f6-x2x9z", "", "deployment/web")] > 0
            assert got[(component, "workload", "db", "pg-0", "", "statefulset/pg")] > 0
            measured, attributed = node.measured_since_start(), node.attributed()
            assert attributed[component] == pytest.approx(measured[component], rel=1e-9, abs=1e-6), component
    finally:
        node.close()
