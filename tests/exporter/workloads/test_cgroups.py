"""Workload cgroups by pattern in a fake cgroup v2 tree, cpu.stat and /proc/stat, hostile files included."""

from __future__ import annotations

from pathlib import Path

import pytest

from wattfleet.exporter.workloads.cgroups import (
    CgroupPatternError,
    ProcStatError,
    Workload,
    parse_patterns,
    read_cpu_times,
    read_usage_usec,
    scan,
)
from wattfleet.exporter.workloads.pods import PodName, read_pod_names
from wattfleet.sim.fake_cgroup import FakeCgroupTree, slurm_job


def test_kubernetes_and_slurm_presets_find_pods_and_jobs(tmp_path: Path) -> None:
    tree = FakeCgroupTree(tmp_path)
    tree.add_pod("web", "api-0", "1111-2222-3333")
    tree.add_pod("db", "pg-0", "4444-5555", qos="guaranteed")
    tree.add_pod("batch", "x", "6666", qos="besteffort")
    tree.add(slurm_job("1234"))
    (tree.cgroup_root / "kubepods.slice" / "kubepods-burstable.slice").mkdir(exist_ok=True)  # a QoS level
    (tree.cgroup_root / "kubepods" / "burstable" / "pod7777-8888").mkdir(parents=True)      # cgroupfs driver
    found = scan(str(tree.cgroup_root), parse_patterns(["kubernetes", "slurm"]))
    assert sorted(found.values(), key=lambda w: w.id) == [
        Workload("kubernetes", "1111-2222-3333"), Workload("slurm", "1234"), Workload("kubernetes", "4444-5555"),
        Workload("kubernetes", "6666"), Workload("kubernetes", "7777-8888")]


def test_custom_pattern(tmp_path: Path) -> None:
    (tmp_path / "pbspro.slice" / "pbspro-42.server.slice").mkdir(parents=True)
    (tmp_path / "pbspro.slice" / "other").mkdir()
    found = scan(str(tmp_path), parse_patterns(["pbs:pbspro.slice/pbspro-{id}.*.slice"]))
    assert list(found.values()) == [Workload("pbs", "42")]


@pytest.mark.parametrize("spec", ["nope", "pbs:a/b", "pbs:a/{id}/{id}", "Bad:x/{id}", "pbs:../{id}",
                                  "kubernetes:x/{id}", "pbs:a//{id}", "pbs:a/b{c}{id}"])
def test_bad_patterns_say_why(spec: str) -> None:
    with pytest.raises(CgroupPatternError):
        parse_patterns([spec])


def test_cpu_stat_reading_is_strict(tmp_path: Path) -> None:
    (tmp_path / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\n")
    assert read_usage_usec(str(tmp_path)) == 1500
    (tmp_path / "cpu.stat").write_text("usage_usec -3\n")
    assert read_usage_usec(str(tmp_path)) is None
    (tmp_path / "cpu.stat").write_text("usage_usec lots\n")
    assert read_usage_usec(str(tmp_path)) is None
    (tmp_path / "cpu.stat").write_text("user 5\n")   # cgroup v1's cpuacct.stat style: not ours
    assert read_usage_usec(str(tmp_path)) is None
    assert read_usage_usec(str(tmp_path / "gone")) is None


def test_proc_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 1 5 100 4 1 1 0 3 0\ncpu0 1 1 1 1 1 1 1 1 1 1\n")
    times = read_cpu_times(stat)
    assert (times.busy, times.total) == (18, 122)
    for bad, where in (("intr 1\n", "expected the aggregate"), ("cpu 1 2 x 4\n", "not integers"),
                       ("cpu 1 -2 3 4\n", "negative")):
        stat.write_text(bad)
        with pytest.raises(ProcStatError, match=where):
            read_cpu_times(stat)
    with pytest.raises(ProcStatError, match="unreadable"):
        read_cpu_times(tmp_path / "missing")


def test_pod_names_from_log_directories(tmp_path: Path) -> None:
    for name in ("web_api-0_1111", "kube-system_coredns-abc_2222", "junk", "a_b", "a__c"):
        (tmp_path / name).mkdir()
    assert read_pod_names(tmp_path) == {"1111": PodName("web", "api-0"), "2222": PodName("kube-system", "coredns-abc")}
    assert read_pod_names(tmp_path / "absent") == {}
