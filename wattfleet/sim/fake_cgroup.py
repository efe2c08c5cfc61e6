"""A directory laid out like a cgroup v2 hierarchy, with CPU time flowing through it, and its /proc/stat.

Pods sit where the kubelet's systemd cgroup driver puts them
(``kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice``,
guaranteed pods directly under ``kubepods.slice``; the UID's dashes written
as underscores), Slurm jobs where slurmstepd's cgroup/v2 plugin does
(``system.slice/slurmstepd.scope/job_<id>``). Each has a ``cpu.stat`` whose
``usage_usec`` advances by :meth:`FakeCgroupTree.run`; the node's
``/proc/stat`` ``cpu`` line (USER_HZ = 100 jiffies a second) advances by
the workloads' time plus the system time given, the rest of the CPUs' time
is idle. ``/var/log/pods/<namespace>_<name>_<uid>`` directories are made
too (the exporter maps pod UIDs to names through them).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

USER_HZ = 100


@dataclass
class FakeCgroup:
    path: Path
    usage_usec: int = 0


def pod_slice(uid: str, qos: str = "burstable") -> str:
    """The pod's cgroup path under the root, as the systemd driver names it."""
    u = uid.replace("-", "_")
    if qos == "guaranteed":
        return f"kubepods.slice/kubepods-pod{u}.slice"
    return f"kubepods.slice/kubepods-{qos}.slice/kubepods-{qos}-pod{u}.slice"


def slurm_job(job_id: str) -> str:
    return f"system.slice/slurmstepd.scope/job_{job_id}"


class FakeCgroupTree:
    """``root/cgroup`` (like /sys/fs/cgroup), ``root/proc/stat`` and ``root/log/pods``."""

    def __init__(self, root: str | os.PathLike[str], cpus: int = 8) -> None:
        self.root = Path(root)
        self.cgroup_root = self.root / "cgroup"
        self.proc_stat = self.root / "proc" / "stat"
        self.pod_logs = self.root / "log" / "pods"
        self.cpus = cpus
        self.cgroups: dict[str, FakeCgroup] = {}
        self.busy_jiffies = 0
        self.total_jiffies = 0
        for d in (self.cgroup_root / "kubepods.slice", self.cgroup_root / "system.slice", self.proc_stat.parent,
                  self.pod_logs):
            d.mkdir(parents=True, exist_ok=True)
        # What tells a cgroup v2 hierarchy from v1 at its root.
        (self.cgroup_root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
        self._write_stat()

    def add(self, rel: str, usage_usec: int = 0) -> FakeCgroup:
        """A workload cgroup at ``rel`` (see :func:`pod_slice`, :func:`slurm_job`)."""
        cg = FakeCgroup(self.cgroup_root / rel, usage_usec)
        cg.path.mkdir(parents=True, exist_ok=True)
        (cg.path / "container-1.scope").mkdir(exist_ok=True)  # a child, as containers and steps are
        self.cgroups[rel] = cg
        self._write_usage(cg)
        return cg

    def add_pod(self, namespace: str, name: str, uid: str, qos: str = "burstable") -> FakeCgroup:
        (self.pod_logs / f"{namespace}_{name}_{uid}").mkdir(parents=True, exist_ok=True)
        return self.add(pod_slice(uid, qos))

    def remove(self, rel: str) -> None:
        cg = self.cgroups.pop(rel)
        shutil.rmtree(cg.path, ignore_errors=True)

    def _write_usage(self, cg: FakeCgroup) -> None:
        tmp = cg.path / ".cpu.stat.tmp"
        tmp.write_text(f"usage_usec {cg.usage_usec}\nuser_usec {cg.usage_usec // 2}\n"
                       f"system_usec {cg.usage_usec - cg.usage_usec // 2}\nnr_periods 0\n")
        os.replace(tmp, cg.path / "cpu.stat")

    def _write_stat(self) -> None:
        idle = self.total_jiffies - self.busy_jiffies
        user, system = self.busy_jiffies // 2, self.busy_jiffies - self.busy_jiffies // 2
        tmp = self.proc_stat.with_suffix(".tmp")
        tmp.write_text(f"cpu  {user} 0 {system} {idle} 0 0 0 0 0 0\n"
                       + "".join(f"cpu{i} 0 0 0 0 0 0 0 0 0 0\n" for i in range(self.cpus))
                       + "intr 0\nctxt 0\nbtime 0\n")
        os.replace(tmp, self.proc_stat)

    def run(self, seconds: float, usage: dict[str, float], system_seconds: float = 0.0) -> None:
        """``seconds`` of wall time pass; cgroup ``rel`` uses ``usage[rel]`` CPU-seconds, the system more.

        The node's busy time is the workloads' plus the system's, capped at all CPUs busy.
        """
        busy = 0.0
        for rel, cpu_seconds in usage.items():
            cg = self.cgroups[rel]
            cg.usage_usec += int(round(cpu_seconds * 1e6))
            self._write_usage(cg)
            busy += cpu_seconds
        total = int(round(seconds * self.cpus * USER_HZ))
        self.total_jiffies += total
        self.busy_jiffies += min(int(round((busy + system_seconds) * USER_HZ)), total)
        self._write_stat()
