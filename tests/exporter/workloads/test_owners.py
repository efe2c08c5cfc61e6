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
    FORBIDDEN_BACKOFF_S,
    MAX_JOB_READS,
    OwnersUnavailable,
    PodOwnerReader,
    in_cluster_reader,
    job_of,
    job_owner,
    owner_of,
    parse_pods,
)
from wattfleet.sim.fake_apiserver import FakeApiServer, job, pod
from workload_fixtures import FakeNode, MemoryLister

POD_LIST = FIXTURES / "kubernetes" / "pod_list.json"
JOB = FIXTURES / "kubernetes" / "job_nightly.json"   # nightly-29001234, controlled by CronJob nightly
EXPECTED = {
    ("shop", "web-7d4b9c8f6-x2x9z"): "deployment/web",        # ReplicaSet web-<pod-template-hash>
    ("shop", "batch-rs-abcde"): "replicaset/batch-rs",        # a ReplicaSet without the hash label: no guess
    ("db", "pg-0"): "statefulset/pg",
    ("gpu-operator", "dcgm-abcde"): "daemonset/dcgm",
    ("ml", "nightly-29001234-q8w7e"): "job/nightly-29001234",  # the CronJob is not knowable from the pod alone
    ("default", "debug"): "pod/debug",                        # no owner
    ("default", "adopted"): "pod/adopted",                    # an owner reference that is not the controller
    ("ml", "vllm-0"): "leaderworkerset/vllm",                 # other controllers: kind lower-cased
}


WITH_JOBS = {**EXPECTED, ("ml", "nightly-29001234-q8w7e"): "cronjob/nightly"}   # its Job read: the CronJob's


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    server = FakeApiServer(json.loads(POD_LIST.read_text())["items"] + [pod("shop", "elsewhere", "node-b")],
                           jobs=[json.loads(JOB.read_text())])
    yield server
    server.close()


def reader(api: FakeApiServer, tmp_path: Path, timeout: float = 2.0, max_bytes: int = 1 << 20,
           node: str = "node-a") -> PodOwnerReader:
    token = tmp_path / "token"
    token.write_text(api.token + "\n")
    return PodOwnerReader(api.url, node, token, None, timeout=timeout, max_bytes=max_bytes)


def test_owner_rule_on_the_api_fixture() -> None:
    assert {key: owner for key, (owner, _) in parse_pods(POD_LIST.read_bytes()).items()} == EXPECTED


def test_replicaset_whose_name_does_not_end_in_the_hash_stays_a_replicaset() -> None:
    p = pod("a", "x-1", "n", owner=("ReplicaSet", "x-abc"), labels={"pod-template-hash": "zzz"})
    assert owner_of(p) == "replicaset/x-abc"
    assert owner_of(pod("a", "x-1", "n", owner=("ReplicaSet", "-abc"), labels={"pod-template-hash": "abc"})) \
        == "replicaset/-abc"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"kind": "Pod", "items": []}', b'{"kind": "PodList"}'])
def test_not_a_pod_list_is_invalid(body: bytes) -> None:
    with pytest.raises(OwnersUnavailable) as err:
        parse_pods(body)
    assert err.value.reason == "apiserver_invalid"


def test_reader_lists_this_nodes_pods_with_the_token(api: FakeApiServer, tmp_path: Path) -> None:
    r = reader(api, tmp_path)
    assert r.read() == WITH_JOBS and r.job_errors() == []
    assert api.paths == ["/api/v1/pods?fieldSelector=spec.nodeName=node-a",
                         "/apis/batch/v1/namespaces/ml/jobs/nightly-29001234"]
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
            assert got[("gpu", "workload", "ml", "nightly-29001234-q8w7e", "train", "cronjob/nightly")] > 0
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


class _Calls:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def list_devices(self) -> list[DeviceHolder]:
        self.calls.append("kubelet")
        return []

    def close(self) -> None:
        pass

    def read(self) -> dict[tuple[str, str], str]:
        self.calls.append("owners")
        return {}

    def job_errors(self) -> list[str]:
        return []


@pytest.mark.parametrize("kubelet_refresh", [1.0, 5.0])
def test_pod_list_waits_one_sample_for_the_kubelet_never_more(kubelet_refresh: float) -> None:
    from wattfleet.exporter.workloads.sensor import WorkloadSensor  # the sensor alone, no fake node needed

    calls = _Calls()
    sensor = WorkloadSensor(calls, None, refresh=kubelet_refresh, owners=calls, owners_refresh=3.0)
    per_sample = []
    for t in range(8):
        calls.calls.clear()
        sensor.sample(float(t))
        per_sample.append(tuple(calls.calls))
    if kubelet_refresh > 1.0:   # a kubelet not due every sample: never both calls in one sample
        assert all(len(c) <= 1 for c in per_sample)
    assert sum("owners" in c for c in per_sample) >= 2   # deferred one sample at most, never starved


def _job_pods(n: int, node: str = "node-a") -> list[dict[str, object]]:
    """``n`` Jobs of CronJob ``cj`` with one pod each on ``node``."""
    return [pod("ml", f"cj-{i}-p", node, owner=("Job", f"cj-{i}")) for i in range(n)]


def test_job_owned_by_a_cronjob_is_the_cronjob_and_is_read_once(tmp_path: Path) -> None:
    pods = _job_pods(2) + [pod("ml", "cj-0-q", "node-a", owner=("Job", "cj-0")),   # a second pod of one Job
                           pod("ml", "solo-p", "node-a", owner=("Job", "solo")),
                           pod("ml", "other-p", "node-a", owner=("Job", "other"))]
    jobs = [job("ml", "cj-0", cronjob="cj"), job("ml", "cj-1", cronjob="cj"),
            job("ml", "solo"),                                   # a Job made by hand: no owner
            job("ml", "other", cronjob="cj", controller=False)]  # a CronJob reference that is not the controller
    server = FakeApiServer(pods, jobs=jobs)
    try:
        r = reader(server, tmp_path)
        want = {("ml", "cj-0-p"): "cronjob/cj", ("ml", "cj-0-q"): "cronjob/cj", ("ml", "cj-1-p"): "cronjob/cj",
                ("ml", "solo-p"): "job/solo", ("ml", "other-p"): "job/other"}
        assert r.read() == want and r.job_errors() == []
        assert sum("/jobs/" in p for p in server.paths) == 4          # one read per Job, not per pod
        server.paths.clear()
        assert r.read() == want                                         # cached: a Job's owner never changes
        assert server.paths == ["/api/v1/pods?fieldSelector=spec.nodeName=node-a"]
    finally:
        server.close()


def test_a_new_job_of_the_same_name_is_read_again(tmp_path: Path) -> None:
    server = FakeApiServer([pod("ml", "p", "node-a", owner=("Job", "j"))], jobs=[job("ml", "j", cronjob="a")])
    try:
        r = reader(server, tmp_path)
        assert r.read() == {("ml", "p"): "cronjob/a"}
        # the Job deleted and made again under the same name (another uid): its pod names the new uid
        server.pods = [pod("ml", "p", "node-a", owner=("Job", "j"))]
        server.pods[0]["metadata"]["ownerReferences"][0]["uid"] = "uid-j-2"
        server.jobs = {("ml", "j"): job("ml", "j", cronjob="b", uid="uid-j-2")}
        assert r.read() == {("ml", "p"): "cronjob/b"}
        # a pod still naming an old uid the API server no longer has under that name: not that Job's owner
        server.pods[0]["metadata"]["ownerReferences"][0]["uid"] = "uid-j-1"
        assert r.read() == {("ml", "p"): "job/j"}
    finally:
        server.close()


@pytest.mark.parametrize("fault,reason", [(403, "apiserver_job_forbidden"), (404, "apiserver_job_not_found"),
                                          ("slow", "apiserver_job_timeout"), (503, "apiserver_job_unavailable")])
def test_failed_job_read_leaves_job_and_is_counted(tmp_path: Path, fault: object, reason: str) -> None:
    server = FakeApiServer(_job_pods(3), jobs=[job("ml", f"cj-{i}", cronjob="cj") for i in range(3)])
    try:
        if fault == "slow":
            server.job_delay = 0.6
        elif fault == 404:
            server.jobs = {}
        else:
            server.job_status = int(str(fault))
        r = reader(server, tmp_path, timeout=0.3)
        assert r.read() == {("ml", f"cj-{i}-p"): f"job/cj-{i}" for i in range(3)}   # the pod list still counts
        # 404: every gone Job once (then cached); 403, timeout, 503: the first Job stops this refresh's reads
        assert r.job_errors() == [reason] * (3 if fault == 404 else 1)
    finally:
        server.close()


def test_forbidden_job_reads_back_off(tmp_path: Path) -> None:
    now = [1000.0]
    server = FakeApiServer(_job_pods(3), jobs=[job("ml", f"cj-{i}", cronjob="cj") for i in range(3)])
    try:
        server.job_status = 403
        token = tmp_path / "token"
        token.write_text(server.token)
        r = PodOwnerReader(server.url, "node-a", token, None, timeout=2.0, clock=lambda: now[0])
        r.read()
        assert r.job_errors() == ["apiserver_job_forbidden"]
        for _ in range(5):                       # refreshes within the backoff: no Job read, nothing counted
            now[0] += 30
            server.paths.clear()
            assert r.read()[("ml", "cj-0-p")] == "job/cj-0" and r.job_errors() == []
            assert not any("/jobs/" in p for p in server.paths)
        now[0] += FORBIDDEN_BACKOFF_S           # past it: one try, still forbidden, the backoff doubles
        server.paths.clear()
        r.read()
        assert r.job_errors() == ["apiserver_job_forbidden"] and sum("/jobs/" in p for p in server.paths) == 1
        now[0] += FORBIDDEN_BACKOFF_S + 1
        r.read()
        assert r.job_errors() == []              # within the doubled backoff
        server.job_status = 200                   # RBAC granted
        now[0] += FORBIDDEN_BACKOFF_S
        assert set(r.read().values()) == {"cronjob/cj"} and r.job_errors() == []
    finally:
        server.close()


def test_job_reads_per_refresh_are_bounded(tmp_path: Path) -> None:
    server = FakeApiServer(_job_pods(20), jobs=[job("ml", f"cj-{i}", cronjob="cj") for i in range(20)])
    try:
        r = reader(server, tmp_path)
        assert r.max_job_reads == MAX_JOB_READS
        resolved = []
        for _ in range(3):
            server.paths.clear()
            got = r.read()
            assert sum("/jobs/" in p for p in server.paths) <= MAX_JOB_READS
            resolved.append(sum(v == "cronjob/cj" for v in got.values()))
            assert all(v in ("cronjob/cj", f"job/{k[1][:-2]}") for k, v in got.items())   # unread: job/<name>
        assert resolved == [MAX_JOB_READS, 2 * MAX_JOB_READS, 20]   # the backlog is read over later refreshes
    finally:
        server.close()


def test_job_cache_is_bounded(tmp_path: Path) -> None:
    server = FakeApiServer(_job_pods(4), jobs=[job("ml", f"cj-{i}", cronjob="cj") for i in range(4)])
    try:
        token = tmp_path / "token"
        token.write_text(server.token)
        r = PodOwnerReader(server.url, "node-a", token, None, max_cached_jobs=2)
        for _ in range(3):
            assert set(r.read().values()) <= {"cronjob/cj", "job/cj-0", "job/cj-1", "job/cj-2", "job/cj-3"}
            assert len(r._jobs) <= 2
    finally:
        server.close()


def test_job_answer_that_is_not_the_job_is_invalid() -> None:
    ref = job_of(pod("ml", "p", "n", owner=("Job", "j")))
    assert ref is not None and ref.name == "j" and ref.uid == "uid-j"
    assert job_owner(JOB.read_bytes(), job_of(json.loads(POD_LIST.read_text())["items"][4]) or ref) \
        == "cronjob/nightly"
    for body in (b"nope", b'{"kind": "Pod", "metadata": {"name": "j"}}', b'{"kind": "Job", "metadata": {"name": "k"}}'):
        with pytest.raises(OwnersUnavailable) as err:
            job_owner(body, ref)
        assert err.value.reason == "apiserver_invalid"
    # a CronJob kind of another API group is not the batch CronJob
    other = job("ml", "j", cronjob="x")
    other["metadata"]["ownerReferences"][0]["apiVersion"] = "example.com/v1"
    assert job_owner(json.dumps(other).encode(), ref) == "job/j"
    assert job_of(pod("ml", "p", "n", owner=("ReplicaSet", "r"))) is None


def test_sensor_counts_failed_job_reads_and_keeps_energy(api: FakeApiServer, tmp_path: Path) -> None:
    api.job_status = 403   # RBAC without get on batch jobs
    lister = MemoryLister([DeviceHolder("ml", "nightly-29001234-q8w7e", "train", "nvidia.com/gpu", "GPU-0000")])
    node = FakeNode(tmp_path / "node", gpus=2, lister=lister, cgroup_specs=(),
                    owners=reader(api, tmp_path), owners_refresh=2.0)
    try:
        for _ in range(6):
            node.step()
        got = node.published()
        assert got[("gpu", "workload", "ml", "nightly-29001234-q8w7e", "train", "job/nightly-29001234")] > 0
        assert node.attributed()["gpu"] == pytest.approx(node.measured_since_start()["gpu"], rel=1e-9)
        assert node.sampler.errors[("workload", "apiserver_job_forbidden")] == 1   # backed off, not every refresh
        assert sum("/jobs/" in p for p in api.paths) == 1
    finally:
        node.close()


def test_a_bad_job_answer_is_counted_once_and_does_not_starve_the_others(tmp_path: Path) -> None:
    bad = job("ml", "cj-0", cronjob="cj")
    bad["kind"] = "Pod"   # not a Job
    jobs = [bad] + [job("ml", f"cj-{i}", cronjob="cj") for i in range(1, MAX_JOB_READS + 2)]
    server = FakeApiServer(_job_pods(MAX_JOB_READS + 2), jobs=jobs)
    try:
        r = reader(server, tmp_path)
        r.read()
        assert r.job_errors() == ["apiserver_job_invalid"]
        got = r.read()
        assert r.job_errors() == []
        assert got[("ml", "cj-0-p")] == "job/cj-0"
        assert all(v == "cronjob/cj" for k, v in got.items() if k != ("ml", "cj-0-p"))
    finally:
        server.close()
