"""`wattfleet exporter`'s workload flags: when the collector attaches, what it refuses, and a real --once run."""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from wattfleet.cli import build_parser
from wattfleet.exporter.sensors.base import SensorUnavailable
from wattfleet.exporter.workloads.attach import WorkloadConfigError, build_workload_sensor
from wattfleet.sim.fake_cgroup import FakeCgroupTree, slurm_job
from wattfleet.sim.fake_powercap import FakePowercap


def parse(*argv: str) -> argparse.Namespace:
    return build_parser("exporter", every=False).parse_args(["exporter", *argv])


def test_absent_without_a_kubelet_or_cgroup_patterns(tmp_path: Path) -> None:
    with pytest.raises(SensorUnavailable, match="no kubelet"):
        build_workload_sensor(parse("--kubelet.pod-resources-socket", str(tmp_path / "none" / "kubelet.sock")))
    with pytest.raises(SensorUnavailable):
        build_workload_sensor(parse("--kubelet.pod-resources-socket", ""))


def test_a_kubelet_socket_directory_turns_gpu_attribution_on(socket_dir: Path) -> None:
    sensor = build_workload_sensor(parse("--kubelet.pod-resources-socket", str(socket_dir / "kubelet.sock"),
                                         "--kubelet.timeout", "0.2"))
    try:
        assert sensor.lister is not None and sensor.cgroups is None   # the socket itself may come later
    finally:
        sensor.close()


@pytest.mark.parametrize("argv, message", [
    (["--workload-cgroups", "pbs:no-placeholder"], "{id}"),
    (["--workload-cgroups", "slurm", "--kubelet.refresh-interval", "0"], "positive"),
])
def test_bad_workload_flags_are_config_errors(argv: list[str], message: str) -> None:
    with pytest.raises(WorkloadConfigError, match=message):
        build_workload_sensor(parse("--kubelet.pod-resources-socket", "", *argv))


def test_bad_pattern_is_a_usage_error_of_the_command(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "wattfleet", "exporter", "--once", "--no-collector.nvml",
                           "--sysfs-root", str(tmp_path), "--kubelet.pod-resources-socket", "",
                           "--workload-cgroups", "pbs:x/y"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--workload-cgroups" in proc.stderr and "Traceback" not in proc.stderr


def test_once_on_a_slurm_node_publishes_job_energy(tmp_path: Path) -> None:
    FakePowercap(tmp_path / "sys", sockets=1)
    tree = FakeCgroupTree(tmp_path / "node")
    tree.add(slurm_job("4242"), usage_usec=5)
    stop = threading.Event()

    def job_runs() -> None:  # the node's time flows while the exporter samples twice
        while not stop.wait(0.02):
            tree.run(0.02, {slurm_job("4242"): 0.01}, system_seconds=0.005)

    runner = threading.Thread(target=job_runs, daemon=True)
    runner.start()
    try:
        proc = subprocess.run([sys.executable, "-m", "wattfleet", "exporter", "--once", "--no-collector.nvml",
                               "--interval", "0.2", "--sysfs-root", str(tmp_path / "sys"),
                               "--kubelet.pod-resources-socket", "", "--workload-cgroups", "slurm",
                               "--cgroup-root", str(tree.cgroup_root), "--procfs-root", str(tree.proc_stat.parent)],
                              capture_output=True, text=True, timeout=60)
    finally:
        stop.set()
        runner.join(5)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert 'wattfleet_collector_up{cluster="",collector="workload"' in out
    assert 'component="cpu",namespace="",pod="",container="",workload="slurm/4242",share="workload"' in out
    assert 'component="dram",namespace="",pod="",container="",workload="",share="idle"' in out
    assert 'wattfleet_workload_cgroups{cluster="",kind="slurm"' in out
