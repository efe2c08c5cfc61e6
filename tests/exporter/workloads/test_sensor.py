"""Attribution on a fake node: the real sampler, NVML and RAPL readers over fakes, a fake cgroup tree.

In every case the workload counters of each component add up to the node's measured energy of that
component since attribution started.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wattfleet.core import catalog
from wattfleet.exporter.workloads.devices import DeviceHolder
from wattfleet.sim.fake_cgroup import slurm_job
from workload_fixtures import FakeNode, MemoryLister


def holder(ns: str, pod: str, device: str, container: str = "main", resource: str = "nvidia.com/gpu") -> DeviceHolder:
    return DeviceHolder(ns, pod, container, resource, device)


def assert_adds_up(node: FakeNode) -> None:
    measured, attributed = node.measured_since_start(), node.attributed()
    components = (("gpu",) if node.sensor.lister is not None else ()) + (
        ("cpu", "dram") if node.sensor.cgroups is not None else ())
    for component in components:
        assert attributed.get(component, 0.0) == pytest.approx(measured[component], rel=1e-9, abs=1e-6), component


def test_gpus_by_pod_time_slicing_and_unallocated(tmp_path: Path) -> None:
    lister = MemoryLister([holder("ml", "train", "GPU-0000"),
                           holder("web", "a", "GPU-0001::0"), holder("web", "b", "GPU-0001::1"),
                           holder("web", "b", "GPU-0001::2")])
    node = FakeNode(tmp_path, gpus=3, lister=lister, cgroup_specs=())
    for _ in range(5):
        node.step()
    assert_adds_up(node)
    got = node.published()
    # GPU 0 (100 W) wholly to train; GPU 1 (150 W) 1:2 between a and b by replicas; GPU 2 (200 W) unheld.
    assert got[("gpu", "workload", "ml", "train", "main", "")] == pytest.approx(500.0)
    assert got[("gpu", "workload", "web", "a", "main", "")] == pytest.approx(250.0)
    assert got[("gpu", "workload", "web", "b", "main", "")] == pytest.approx(500.0)
    assert got[("gpu", "unallocated", "", "", "", "")] == pytest.approx(1000.0)
    assert not any(k[0] in ("cpu", "dram") for k in got)   # no cgroup patterns: no CPU attribution


def test_mig_instances_share_their_gpu_equally(tmp_path: Path) -> None:
    lister = MemoryLister([holder("ml", "small", "MIG-0000-0", resource="nvidia.com/mig-1g.10gb"),
                           holder("ml", "big", "MIG-0000-1", resource="nvidia.com/mig-3g.40gb")])
    node = FakeNode(tmp_path, gpus=1, lister=lister, cgroup_specs=(), mig={0: 3})
    for _ in range(4):
        node.step()
    got = node.published()
    assert got[("gpu", "workload", "ml", "small", "main", "")] == pytest.approx(400.0 / 3)
    assert got[("gpu", "workload", "ml", "big", "main", "")] == pytest.approx(400.0 / 3)
    assert got[("gpu", "unallocated", "", "", "", "")] == pytest.approx(400.0 / 3)   # the third instance
    assert_adds_up(node)


def test_cpu_and_dram_by_cgroup_time_with_idle_and_system_explicit(tmp_path: Path) -> None:
    node = FakeNode(tmp_path, gpus=0 or 1, lister=None)
    web = node.tree.add_pod("web", "api-0", "1111-2222")
    db = node.tree.add_pod("db", "pg-0", "3333-4444", qos="guaranteed")
    job = node.tree.add(slurm_job("1234"))
    rel = {c.path: r for r, c in node.tree.cgroups.items()}
    usage = {rel[web.path]: 2.0, rel[db.path]: 1.0, rel[job.path]: 1.0}
    node.step(usage, system_seconds=0.0)   # the new cgroups' first interval (their whole time is new)
    for _ in range(3):
        node.step(usage, system_seconds=1.0)
    assert_adds_up(node)
    got = node.published()
    # 8 CPUs over 1 s; busy 4 s of workloads + 1 s system = 5/8 of the time: idle 3/8 of each interval.
    package_per_tick = 2 * 120.0   # the fake's two 120 W packages
    ticks = 4
    assert got[("cpu", "idle", "", "", "", "")] == pytest.approx(package_per_tick * (3 / 8 * 3 + 4 / 8 * 1), rel=1e-6)
    assert got[("cpu", "workload", "web", "api-0", "", "")] == pytest.approx(
        package_per_tick * (2 / 8) * ticks, rel=1e-6)
    assert got[("cpu", "workload", "", "", "", "slurm/1234")] == pytest.approx(package_per_tick * (1 / 8) * ticks,
                                                                               rel=1e-6)
    assert got[("cpu", "system", "", "", "", "")] == pytest.approx(package_per_tick * (1 / 8) * 3, rel=1e-6)
    assert ("dram", "workload", "db", "pg-0", "", "") in got


def test_pods_coming_and_going(tmp_path: Path) -> None:
    lister = MemoryLister([holder("ml", "a", "GPU-0000")])
    node = FakeNode(tmp_path, gpus=2, lister=lister, refresh=1.0, retention=3.0)
    a = node.tree.add_pod("ml", "a", "aaaa")
    rel_a = next(r for r, c in node.tree.cgroups.items() if c.path == a.path)
    node.step({rel_a: 1.0})
    node.step({rel_a: 1.0})
    lister.holders = [holder("ml", "b", "GPU-0000"), holder("ml", "b", "GPU-0001")]
    node.tree.remove(rel_a)
    b = node.tree.add_pod("ml", "b", "bbbb")
    rel_b = next(r for r, c in node.tree.cgroups.items() if c.path == b.path)
    for _ in range(6):
        node.step({rel_b: 2.0})
        assert_adds_up(node)
    got = node.published()
    assert ("gpu", "workload", "ml", "a", "main", "") not in got          # gone longer than the retention
    assert node.sensor._expired["gpu"] > 0                                # ... its energy still in the totals
    assert got[("gpu", "workload", "ml", "b", "main", "")] > 0
    assert got[("cpu", "workload", "ml", "b", "", "")] > 0


def test_kubelet_down_keeps_the_last_mapping_and_is_visible(tmp_path: Path) -> None:
    lister = MemoryLister([holder("ml", "a", "GPU-0000")])
    node = FakeNode(tmp_path, gpus=1, lister=lister, cgroup_specs=(), refresh=1.0)
    node.step()
    lister.down = True
    for _ in range(3):
        node.step()
    assert_adds_up(node)
    assert node.published()[("gpu", "workload", "ml", "a", "main", "")] == pytest.approx(400.0)
    assert node.sampler.errors[("workload", "kubelet_unavailable")] == 3
    body = node.sampler.snapshot.body.decode() if node.sampler.snapshot else ""
    assert 'wattfleet_collector_up{cluster="",collector="workload",node="n",site=""} 0.0' in body
    ages = [s.value for s in node.sampler.last_results["workload"].samples
            if s.metric == catalog.WORKLOAD_MAPPING_AGE.name]
    assert ages == [3.0]
    assert node.sampler.readiness()[0]                # readiness does not depend on the kubelet


def test_before_the_kubelet_ever_answered_gpus_are_unallocated(tmp_path: Path) -> None:
    node = FakeNode(tmp_path, gpus=1, lister=MemoryLister(down=True), cgroup_specs=())
    node.step()
    assert node.published() == {("gpu", "unallocated", "", "", "", ""): pytest.approx(100.0)}
    assert [s.value for s in node.sampler.last_results["workload"].samples
            if s.metric == catalog.WORKLOAD_MAPPING_AGE.name] == [float("inf")]


pod_sets = st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True, max_size=4)
steps = st.lists(st.tuples(
    pod_sets,                                                        # pods holding GPUs this step
    st.lists(st.integers(0, 3), max_size=6),                         # GPU (0-2) each holds, 3 = a bogus id
    st.dictionaries(st.sampled_from(["a", "b", "c", "d", "job"]), st.floats(0, 3)),  # CPU-seconds per workload
    st.floats(0, 2),                                                  # system CPU-seconds
    st.booleans(),                                                    # kubelet down
    st.floats(0.2, 3.0),                                              # seconds this step
    st.floats(10, 700),                                               # GPU 0 power
), min_size=1, max_size=8)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_workloads_always_add_up_to_the_node(script: list) -> None:
    with tempfile.TemporaryDirectory(prefix="wf-attr-") as d:
        lister = MemoryLister()
        node = FakeNode(Path(d), gpus=3, lister=lister, refresh=0.5, retention=2.0)
        rels: dict[str, str] = {}
        try:
            for pods, devices, usage, system, down, seconds, watts in script:
                lister.down = down
                lister.holders = [holder("ns", p, "GPU-BOGUS" if g == 3 else f"GPU-{g:04d}::{i}")
                                  for p, g in zip(pods, devices, strict=False) for i in range(2)]
                for p in pods:
                    if p not in rels:
                        cg = node.tree.add_pod("ns", p, f"uid-{p}")
                        rels[p] = next(r for r, c in node.tree.cgroups.items() if c.path == cg.path)
                for p in [p for p in rels if p not in pods]:
                    node.tree.remove(rels.pop(p))
                if "job" not in rels:
                    cg = node.tree.add(slurm_job("7"))
                    rels["job"] = next(r for r, c in node.tree.cgroups.items() if c.path == cg.path)
                node.nvml.gpus[0].set_power(watts)
                node.step({rels[w]: u * seconds for w, u in usage.items() if w in rels}, system * seconds, seconds)
                assert_adds_up(node)
        finally:
            node.close()


def test_over_grpc_pods_come_and_go_and_the_kubelet_restarts(tmp_path: Path, socket_dir: Path) -> None:
    """The same node with the fake kubelet serving pod-resources v1 over a unix socket."""
    from wattfleet.exporter.workloads.kubelet import PodResourcesClient  # lazy: needs the kubernetes extra
    from wattfleet.sim.fake_kubelet import FakeKubelet, gpu_pod

    kubelet = FakeKubelet(socket_dir / "kubelet.sock", [gpu_pod("ml", "a", ["GPU-0000"])]).start()
    node = FakeNode(tmp_path, gpus=2, lister=PodResourcesClient(str(kubelet.socket_path), timeout=0.5),
                    refresh=1.0)
    try:
        node.step()
        node.step()
        kubelet.set_pods([gpu_pod("ml", "a", ["GPU-0000"]), gpu_pod("ml", "b", ["GPU-0001::0", "GPU-0001::1"])])
        node.step()
        node.step()
        got = node.published()
        assert got[("gpu", "workload", "ml", "b", "main", "")] == pytest.approx(300.0)   # 2 ticks x 150 W
        kubelet.stop()
        node.step()
        node.step()
        # Refused, or (a connection the server dropped) past the deadline: either way counted, never a hang.
        assert node.sampler.errors[("workload", "kubelet_unavailable")] + \
            node.sampler.errors[("workload", "kubelet_timeout")] == 2
        kubelet.set_pods([])                       # while it was down: the pods are gone when it is back
        kubelet.start()
        for _ in range(100):   # the channel reconnects within its backoff (0.5-5 s of real time)
            node.step()
            if not node.sampler.last_results["workload"].errors:
                break
            time.sleep(0.1)
        node.step()
        got = node.published()
        before = got[("gpu", "unallocated", "", "", "", "")]
        node.step()
        assert node.published()[("gpu", "unallocated", "", "", "", "")] == pytest.approx(before + 250.0)
        assert_adds_up(node)
    finally:
        node.close()
        kubelet.stop()


@pytest.mark.prometheus
def test_promtool_accepts_the_snapshot_with_workload_series(tmp_path: Path) -> None:
    import subprocess

    from promserver import PROMTOOL

    lister = MemoryLister([holder("ml", "a", "GPU-0000"), holder("ml", 'we"ird\\name', "GPU-0001")])
    node = FakeNode(tmp_path, gpus=2, lister=lister)
    cg = node.tree.add_pod("ml", "a", "aaaa")
    rel = next(r for r, c in node.tree.cgroups.items() if c is cg)
    node.step({rel: 1.0})
    node.step({rel: 1.0})
    body = node.sampler.snapshot.body if node.sampler.snapshot else b""
    assert body.count(b"# TYPE wattfleet_workload_energy_joules_total counter") == 1
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True)
    assert proc.returncode == 0 and proc.stdout.decode() + proc.stderr.decode() == ""
    assert node.published()[("gpu", "workload", "ml", 'we"ird\\name', "main", "")] == pytest.approx(300.0)


def test_a_cgroup_v1_host_is_refused_not_misattributed(tmp_path: Path) -> None:
    """No cgroup.controllers at the root: CPU/DRAM are not attributed (no series), and the collector says why."""
    node = FakeNode(tmp_path, gpus=1, lister=None)
    (node.tree.cgroup_root / "cgroup.controllers").unlink()
    for _ in range(3):
        node.step(system_seconds=2.0)
    assert node.sampler.errors[("workload", "not_cgroup_v2")] == 3
    assert not node.published()


def test_thousands_of_workloads_are_bounded_and_still_add_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kubelet reporting more containers than the cap (and absurd names): series bounded, energy kept."""
    from wattfleet.exporter.workloads import sensor as sensor_module

    monkeypatch.setattr(sensor_module, "MAX_WORKLOAD_SERIES", 10)
    lister = MemoryLister([holder("ns", f"pod-{i}" + "x" * 1000, f"GPU-0000::{i}") for i in range(40)])
    node = FakeNode(tmp_path, gpus=1, lister=lister, cgroup_specs=())
    for _ in range(3):
        node.step()
    got = node.published()
    assert len(got) <= 11 and node.sensor.overflowed > 0
    assert all(len(k[3]) <= sensor_module.MAX_LABEL_CHARS for k in got)
    assert got[("gpu", "workload", "", "", "", "")] > 0
    assert_adds_up(node)
