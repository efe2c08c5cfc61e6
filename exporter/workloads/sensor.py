"""The ``workload`` collector: the node's measured energy split between pods and batch jobs.

Each sampler tick, :meth:`WorkloadSensor.sample` (on the collector's own
thread, under the sampler's deadline) reads the node's CPU times and every
workload cgroup's CPU time, and every ``refresh`` seconds asks the kubelet
which container holds which GPU (one pod-resources ``List`` with its own
deadline). After all collectors ran, the sampler's observer hook
(:meth:`WorkloadSensor.observe`) takes this tick's GPU, CPU and DRAM
energy counters from the NVML, RAPL (or estimated host) collectors' results,
splits each device's increase since the last tick (:mod:`.split`), adds the
parts to per-workload counters and puts them into this collector's result,
so they are published in the same snapshot as the energy they divide.

Per node and component the published series add up to the node's energy of
that component since attribution started: GPU energy always (an unheld GPU's
goes to ``share="unallocated"``); CPU and DRAM energy when an interval's CPU
times were read, otherwise the energy waits for the next interval that was.

A kubelet that does not answer is counted (``collector_errors_total
{collector="workload", reason="kubelet_unavailable"|"kubelet_timeout"}``,
``collector_up`` 0) and the last mapping is kept: while the kubelet is down
no pod can start or stop, so it is still right. Device energy and readiness
are unaffected. ``wattfleet_workload_mapping_age_seconds`` says how old it is.

Pod owners (the ``workload`` label of pod series) come from an optional
:class:`OwnerSource` (:mod:`.owners`, the API server's pod list), read on the
collector's thread every ``owners_refresh`` seconds. A failed read is counted
(``reason="apiserver_*"``, ``collector_up`` 0 for that sample) and the last
answer kept; a pod not in it has ``workload=""``. Job reads that failed within
a good answer (their pods stay ``job/<name>``) are counted the same way
(``reason="apiserver_job_*"``, :meth:`OwnerSource.job_errors`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from prometheus_client.utils import floatToGoString

from wattfleet.core import catalog
from wattfleet.exporter.sensors.base import Sample, SensorResult
from wattfleet.exporter.workloads.cgroups import (
    KUBERNETES,
    USER_HZ,
    CgroupPattern,
    CpuTimes,
    ProcStatError,
    Workload,
    read_cpu_times,
    read_usage_usec,
    scan,
)
from wattfleet.exporter.workloads.devices import (
    Assignment,
    DeviceHolder,
    GpuInventory,
    KubeletUnavailable,
    WorkloadKey,
    assign,
)
from wattfleet.exporter.workloads.owners import OwnersUnavailable
from wattfleet.exporter.workloads.pods import PodName, read_pod_names
from wattfleet.exporter.workloads.split import split_cpu, split_device

log = logging.getLogger(__name__)

NOBODY = WorkloadKey("", "", "", "")
# Bounds against a hostile or broken kubelet or cgroup tree. A node runs at most the kubelet's maxPods
# (110 by default, rarely above 500): 3 components x 1000 pods and containers is far past any real node.
MAX_WORKLOAD_SERIES = 3000
MAX_LABEL_CHARS = 253  # the longest Kubernetes object name (a DNS subdomain)
# RAPL domains attributed, and the component each becomes (psys overlaps both; core/uncore are inside package).
_CPU_COMPONENTS = {"package": "cpu", "dram": "dram"}


_HEADER = (f"# HELP {catalog.WORKLOAD_ENERGY.series} {catalog.WORKLOAD_ENERGY.help}\n"
           f"# TYPE {catalog.WORKLOAD_ENERGY.series} counter\n")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _series_prefix(const: Mapping[str, str], k: tuple[str, str, WorkloadKey]) -> str:
    component, share, key = k
    labels = {**const, "component": component, "namespace": key.namespace, "pod": key.pod,
              "container": key.container, "workload": key.workload, "share": share}
    return catalog.WORKLOAD_ENERGY.series + "{" + ",".join(
        f'{name}="{_escape(value)}"' for name, value in labels.items()) + "}"


class DeviceLister(Protocol):
    """What the sensor needs of the kubelet client (:class:`~.kubelet.PodResourcesClient`)."""

    def list_devices(self) -> list[DeviceHolder]:
        ...

    def close(self) -> None:
        ...


class OwnerSource(Protocol):
    """What the sensor needs of the API server reader (:class:`~.owners.PodOwnerReader`)."""

    def read(self) -> dict[tuple[str, str], str]:
        ...

    def job_errors(self) -> list[str]:
        """Reasons of the Job reads that failed during the last ``read`` (their pods stay ``job/<name>``)."""
        ...


@dataclass
class UsageInterval:
    """CPU times over one interval between two readings of the sensor."""

    busy_ratio: float
    busy_seconds: float
    usage_seconds: dict[WorkloadKey, float] = field(default_factory=dict)
    present: set[WorkloadKey] = field(default_factory=set)


@dataclass
class CgroupConfig:
    root: Path
    patterns: list[CgroupPattern]
    proc_stat: Path
    pod_logs_dir: Path | None = None


class WorkloadSensor:
    """GPU energy by the kubelet's device assignment, CPU/DRAM energy by cgroup CPU time."""

    name = "workload"

    def __init__(self, lister: DeviceLister | None = None, cgroups: CgroupConfig | None = None,
                 refresh: float = 5.0, retention: float = 600.0,
                 workload_of: Callable[[], Mapping[tuple[str, str], str]] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 owners: OwnerSource | None = None, owners_refresh: float = 30.0) -> None:
        """``lister``: the kubelet (None: no GPU attribution); ``cgroups``: None, no CPU/DRAM attribution.

        ``retention``: seconds a workload's counters stay published after it last gained energy, so
        its last increase is scraped before the series goes; ``workload_of``: (namespace, pod) ->
        owner workload, where known; ``owners``: where that mapping is read every ``owners_refresh``
        seconds (replaces ``workload_of``).
        """
        self.lister = lister
        self.cgroups = cgroups
        self.refresh = refresh
        self.retention = retention
        self.owners = owners
        self.owners_refresh = owners_refresh
        self._owner_map: dict[tuple[str, str], str] = {}
        self._owners_attempt: float | None = None
        self._owners_deferred = False
        self.workload_of = (lambda: self._owner_map) if owners is not None else (workload_of or (lambda: {}))
        self.clock = clock
        self._lock = threading.Lock()
        # Sampling side (the collector's thread).
        self._holders: list[DeviceHolder] | None = None
        self._mapping_time: float | None = None
        self._last_attempt: float | None = None
        self._cpu_times: CpuTimes | None = None
        self._usage: dict[str, int] = {}
        self._workloads: dict[str, Workload] = {}
        self._pods: dict[str, PodName] = {}
        self._pods_read: float | None = None
        self._pending: UsageInterval | None = None
        self._warned: set[str] = set()
        # Attribution side (the sampler's thread, in observe()).
        self._energy: dict[str, float] = {}
        self._joules: dict[tuple[str, str, WorkloadKey], float] = {}
        self._seen: dict[tuple[str, str, WorkloadKey], float] = {}
        self._prefixes: dict[tuple[str, str, WorkloadKey], str] = {}
        self.const_labels: dict[str, str] = {k: "" for k in catalog.CONST_LABELS}  # the sampler's (attach sets them)
        self._expired: dict[str, float] = {}
        self.overflowed = 0  # workload energy additions published without names (past MAX_WORKLOAD_SERIES)

    # --- sampling ---------------------------------------------------------------------
    def sample(self, now: float) -> SensorResult:
        result = SensorResult()
        kubelet_due = self.lister is not None and (
            self._last_attempt is None or now - self._last_attempt >= self.refresh)
        if self.owners is not None and (
                self._owners_attempt is None or now - self._owners_attempt >= self.owners_refresh):
            # Not both network calls in one sample (their deadlines together could pass the sampler's):
            # the pod list waits one sample for the kubelet, never more (a kubelet due every sample).
            if kubelet_due and not self._owners_deferred:
                self._owners_deferred = True
            else:
                self._owners_deferred = False
                self._read_owners(now, result)
        if self.cgroups is not None:
            self._read_cgroups(now, result)
        if kubelet_due:
            assert self.lister is not None
            self._last_attempt = now
            try:
                holders = self.lister.list_devices()
            except KubeletUnavailable as exc:
                result.errors.append(exc.reason)
                self._warn_once("kubelet", f"{exc}; keeping the last GPU-to-pod mapping")
            else:
                with self._lock:
                    self._holders, self._mapping_time = holders, now
                self._warned.discard("kubelet")
        if self.lister is not None:
            age = float("inf") if self._mapping_time is None else max(now - self._mapping_time, 0.0)
            result.add(catalog.WORKLOAD_MAPPING_AGE.name, age)
        return result

    def _read_owners(self, now: float, result: SensorResult) -> None:
        assert self.owners is not None
        self._owners_attempt = now
        try:
            owners = self.owners.read()
        except OwnersUnavailable as exc:
            result.errors.append(exc.reason)
            self._warn_once("owners", f"{exc}; keeping the last pod owners")
            return
        self._owner_map = owners  # replaced whole: readers on other threads see the old or the new one
        self._warned.discard("owners")
        job_errors = self.owners.job_errors()
        result.errors.extend(job_errors)
        if not job_errors:
            self._warned.discard("jobs")
        else:
            self._warn_once("jobs", f"reading Jobs for their CronJob failed ({', '.join(sorted(set(job_errors)))});"
                            " their pods stay job/<name>")

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("workload attribution: %s", message)

    def _read_cgroups(self, now: float, result: SensorResult) -> None:
        cfg = self.cgroups
        assert cfg is not None
        try:
            times = read_cpu_times(cfg.proc_stat)
        except ProcStatError as exc:
            result.errors.append("proc_stat")
            self._warn_once("proc_stat", str(exc))
            return
        # Walked every sample: a pod found a few seconds late would bring all its CPU time into one
        # interval and take energy from the others' (the totals would add up, the split would not be fair).
        found = scan(str(cfg.root), cfg.patterns)
        if not found and not cfg.root.is_dir():
            result.errors.append("cgroup_root_missing")
            self._warn_once("cgroup_root", f"{cfg.root} is not a directory: CPU and DRAM energy wait")
            return
        if not found and not (cfg.root / "cgroup.controllers").is_file():
            # cgroup v1 (or a hybrid host): its cpuacct files have no usage_usec; reading them would give every
            # workload 0 and the whole active energy to "system". Not attributed, and said so, instead.
            result.errors.append("not_cgroup_v2")
            self._warn_once("cgroup_v2", f"{cfg.root} is not a cgroup v2 hierarchy (no cgroup.controllers): "
                                         "CPU and DRAM energy are not attributed")
            return
        usage: dict[str, int] = {}
        for path in found:
            value = read_usage_usec(path)
            if value is not None:
                usage[path] = value
        kinds: dict[str, int] = {}
        for w in found.values():
            kinds[w.kind] = kinds.get(w.kind, 0) + 1
        for pattern in cfg.patterns:
            kinds.setdefault(pattern.kind, 0)
        for kind, n in sorted(kinds.items()):
            result.add(catalog.WORKLOAD_CGROUPS.name, n, kind=kind)
        if cfg.pod_logs_dir is not None and any(
                w.kind == KUBERNETES and w.id not in self._pods for w in found.values()) and (
                self._pods_read is None or now - self._pods_read >= self.refresh):
            self._pods, self._pods_read = read_pod_names(cfg.pod_logs_dir), now
        interval = None
        if self._cpu_times is not None:
            interval = self._interval(times, usage, found)
        self._cpu_times, self._usage, self._workloads = times, usage, found
        if interval is not None:
            with self._lock:
                self._pending = interval

    def _interval(self, times: CpuTimes, usage: dict[str, int], found: dict[str, Workload]) -> UsageInterval | None:
        previous = self._cpu_times
        assert previous is not None
        total = times.total - previous.total
        busy = times.busy - previous.busy
        if total <= 0 or busy < 0:
            return None  # counters went back (not the same kernel?) or no time passed: no interval
        owners = self.workload_of()
        out = UsageInterval(busy / total, busy / USER_HZ)
        for path, value in usage.items():
            key = self._key(found[path], owners)
            out.present.add(key)
            # A cgroup first seen after the first scan was made since the last tick: all its time is new
            # (likewise one whose counter went back: the path was re-created).
            before = self._usage.get(path)
            delta = value - before if before is not None and value >= before else value
            if delta <= 0:
                continue
            out.usage_seconds[key] = out.usage_seconds.get(key, 0.0) + delta / 1e6
        return out

    def _key(self, w: Workload, owners: Mapping[tuple[str, str], str]) -> WorkloadKey:
        if w.kind != KUBERNETES:
            return WorkloadKey("", "", "", f"{w.kind}/{w.id}")
        pod = self._pods.get(w.id)
        if pod is None:
            return NOBODY  # a pod cgroup whose UID has no log directory (yet): energy of an unknown pod
        return WorkloadKey(pod.namespace, pod.name, "", owners.get((pod.namespace, pod.name), ""))

    # --- attribution ----------------------------------------------------------------------
    def observe(self, results: dict[str, SensorResult], now: float) -> None:
        """Sampler observer: split this tick's energy increases and publish the counters."""
        with self._lock:
            holders, interval, self._pending = self._holders, self._pending, None
        if self.lister is not None:
            self._attribute_gpus(results.get("nvml"), holders)
        if self.cgroups is not None:
            self._attribute_cpu(results, interval)
        self._expire(now)
        own = results.get(self.name)
        if own is not None:
            own.exposition = self.exposition()

    def _delta(self, key: str, joules: float) -> float:
        """Increase of one device counter since the last call that used it (0 on first sight)."""
        last = self._energy.get(key)
        self._energy[key] = joules
        if last is None or joules < last:
            return 0.0
        return joules - last

    def _add(self, component: str, share: str, key: WorkloadKey, joules: float) -> None:
        """Add to one counter; the call also says its workload is still there (see :meth:`_expire`).

        Past ``MAX_WORKLOAD_SERIES`` series a new workload's energy goes to the nameless workload series
        (it still adds up) and the overflow is logged once: a kubelet or cgroup tree reporting thousands of
        workloads cannot flood Prometheus. Label values longer than ``MAX_LABEL_CHARS`` are cut.
        """
        if share == catalog.SHARE_WORKLOAD:
            key = WorkloadKey(*(v[:MAX_LABEL_CHARS] for v in key))
            if (component, share, key) not in self._joules and len(self._joules) >= MAX_WORKLOAD_SERIES:
                self.overflowed += 1
                self._warn_once("overflow", f"more than {MAX_WORKLOAD_SERIES} workload series; the energy of "
                                            "further workloads is published without their names")
                key = NOBODY
        k = (component, share, key)
        self._joules[k] = self._joules.get(k, 0.0) + joules
        self._seen[k] = self.clock()

    def _attribute_gpus(self, nvml: SensorResult | None, holders: list[DeviceHolder] | None) -> None:
        inventory = GpuInventory()
        energy: dict[str, float] = {}
        for s in nvml.samples if nvml is not None else ():
            if s.metric == catalog.GPU_ENERGY.name:
                energy[s.labels["uuid"]] = s.value
                inventory.index_by_uuid[s.labels["uuid"]] = s.labels.get("gpu", "")
            elif s.metric == catalog.GPU_MIG_DEVICE.name:
                inventory.migs.setdefault(s.labels["uuid"], []).append(s.labels["mig_uuid"])
        if not energy:
            return
        self._add("gpu", catalog.SHARE_UNALLOCATED, NOBODY, 0.0)
        assignment = assign(holders or [], inventory, self.workload_of()) if holders else Assignment()
        if assignment.unmatched:
            self._warn_once("unmatched", f"{assignment.unmatched} device ids under nvidia.com/ name no GPU "
                                         "NVML sees on this node; their energy is unallocated")
        for uuid, joules in energy.items():
            delta = self._delta(f"gpu/{uuid}", joules)
            slots = assignment.slots.get(uuid, [{}])
            parts = split_device(delta, slots)
            for key, j in parts.holders.items():
                self._add("gpu", catalog.SHARE_WORKLOAD, key, j)
            for slot in slots:
                for key in slot:  # a holder's series exists (at 0) from the moment it holds the GPU
                    self._add("gpu", catalog.SHARE_WORKLOAD, key, 0.0)
            self._add("gpu", catalog.SHARE_UNALLOCATED, NOBODY, parts.unallocated)

    def _attribute_cpu(self, results: Mapping[str, SensorResult], interval: UsageInterval | None) -> None:
        zones: dict[str, tuple[str, float]] = {}
        for collector in ("rapl", "host"):
            r = results.get(collector)
            for s in r.samples if r is not None else ():
                component = _CPU_COMPONENTS.get(s.labels.get("domain", ""))
                if s.metric == catalog.CPU_ENERGY.name and component is not None:
                    zones[f"{collector}/{s.labels.get('socket', '')}/{s.labels['domain']}"] = (component, s.value)
            if zones:
                break  # measured RAPL when there is any, else the estimate: never both
        if interval is None:
            for zone, (_, joules) in zones.items():
                self._energy.setdefault(f"cpu/{zone}", joules)  # baseline only; the increase waits for CPU times
            return
        by_component: dict[str, float] = {}
        for zone, (component, joules) in zones.items():
            by_component[component] = by_component.get(component, 0.0) + self._delta(f"cpu/{zone}", joules)
        for component, joules in by_component.items():
            # The series appear with the first interval that has CPU times: a node whose cgroups cannot be read
            # publishes no CPU/DRAM attribution rather than zeros that would not add up to its energy.
            parts = split_cpu(joules, interval.busy_ratio, interval.busy_seconds, interval.usage_seconds)
            for who in interval.present:
                self._add(component, catalog.SHARE_WORKLOAD, who, 0.0)
            for who, j in parts.workloads.items():
                self._add(component, catalog.SHARE_WORKLOAD, who, j)
            self._add(component, catalog.SHARE_IDLE, NOBODY, parts.idle)
            self._add(component, catalog.SHARE_SYSTEM, NOBODY, parts.system)

    def _expire(self, now: float) -> None:
        """Drop the series of workloads gone for ``retention`` seconds (their last value has been scraped)."""
        horizon = self.clock() - self.retention
        for k in [k for k, t in self._seen.items() if t < horizon and k[1] == catalog.SHARE_WORKLOAD]:
            del self._seen[k]
            self._expired[k[0]] = self._expired.get(k[0], 0.0) + self._joules.pop(k)

    def samples(self) -> list[Sample]:
        out = []
        for (component, share, key), joules in sorted(self._joules.items()):
            labels = {"component": component, "namespace": key.namespace, "pod": key.pod,
                      "container": key.container, "workload": key.workload, "share": share}
            out.append(Sample(catalog.WORKLOAD_ENERGY.name, labels, joules))
        return out

    def exposition(self) -> bytes:
        """The energy family in the text format, each series' name and labels rendered once and kept."""
        lines = [_HEADER]
        for k, joules in sorted(self._joules.items()):
            prefix = self._prefixes.get(k)
            if prefix is None:
                prefix = self._prefixes[k] = _series_prefix(self.const_labels, k)
            lines.append(f"{prefix} {floatToGoString(joules)}\n")
        for k in [k for k in self._prefixes if k not in self._joules]:
            del self._prefixes[k]
        return "".join(lines).encode()

    def totals(self) -> dict[str, float]:
        """Joules attributed per component (all shares): what tests compare with the node's energy."""
        out = dict(self._expired)
        for (component, _, _), joules in self._joules.items():
            out[component] = out.get(component, 0.0) + joules
        return out

    def close(self) -> None:
        if self.lister is not None:
            self.lister.close()
