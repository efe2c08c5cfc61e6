"""Kubernetes pods on a simulated node, for the real exporter's ``workload`` collector to attribute.

With ``FleetConfig(pods=True)`` every node runs a few pods, laid out the same way
on every node (names and CPU shares drawn from a seeded generator of their own, so
the fleet's energy is the same with pods or without): a training Deployment in a
``research-*`` namespace holding two GPUs, a web Deployment in ``search`` holding
one, on even-numbered nodes a batch Job (``job/hparam-sweep``) holding one more, and a node-exporter
DaemonSet using a little CPU and no GPU; any GPU left over is held by no pod.

The exporter sees them exactly as on a Kubernetes node: which container holds
which GPU through a :class:`~wattfleet.sim.fake_kubelet.FakeKubelet` (the
pod-resources gRPC API on a unix socket), each pod's CPU time in a
:class:`~wattfleet.sim.fake_cgroup.FakeCgroupTree` that advances with the
simulated clock (the node's busy CPU time is the trace's load; the pods take
their shares of it, the rest is the system's), and each pod's owner from one
:class:`~wattfleet.sim.fake_apiserver.FakeApiServer` for the fleet.

Needs the ``kubernetes`` extra (grpcio, protobuf), as the exporter's collector does.
"""

from __future__ import annotations

import random
import shutil
import string
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wattfleet.exporter.workloads.cgroups import parse_patterns
from wattfleet.exporter.workloads.kubelet import PodResourcesClient
from wattfleet.exporter.workloads.owners import PodOwnerReader
from wattfleet.exporter.workloads.sensor import CgroupConfig, WorkloadSensor
from wattfleet.sim.fake_apiserver import job as api_job
from wattfleet.sim.fake_apiserver import pod as api_pod
from wattfleet.sim.fake_cgroup import FakeCgroupTree, pod_slice
from wattfleet.sim.fake_kubelet import FakeContainer, FakeKubelet
from wattfleet.sim.fake_kubelet import FakePod as KubeletPod

GPU_RESOURCE = "nvidia.com/gpu"
BATCH_JOB = "hparam-sweep"  # a Job of its own (no CronJob): its pods are job/hparam-sweep
# Seconds (simulated) between the collector's kubelet and API server reads: the pods never change, and a
# read at every accelerated tick would only cost time.
REFRESH_SECONDS = 3600.0
# How far a pod's CPU share swings from one tick to the next, either side of its mean (relative).
CPU_JITTER = 0.2
_HASH_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes' generated name suffixes use


@dataclass(frozen=True)
class SimPod:
    """One pod: where it runs, who owns it, which GPUs (node indices) its container holds, its CPU share."""

    namespace: str
    name: str
    uid: str
    owner_kind: str                 # ReplicaSet | Job | DaemonSet
    owner_name: str
    container: str
    gpus: tuple[int, ...]
    cpu_share: float                # mean part of the node's busy CPU time
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def workload(self) -> str:
        """The ``workload`` label the exporter's owner rule gives this pod."""
        if self.owner_kind == "ReplicaSet":
            return f"deployment/{self.owner_name.rsplit('-', 1)[0]}"
        return f"{self.owner_kind.lower()}/{self.owner_name}"


def _suffix(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_HASH_CHARS) for _ in range(n))


def _uid(rng: random.Random) -> str:
    h = "".join(rng.choice(string.hexdigits[:16]) for _ in range(32))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _deployment(rng: random.Random, namespace: str, deployment: str, container: str, gpus: tuple[int, ...],
                cpu_share: float) -> SimPod:
    template_hash = _suffix(rng, 10)
    replicaset = f"{deployment}-{template_hash}"
    return SimPod(namespace, f"{replicaset}-{_suffix(rng, 5)}", _uid(rng), "ReplicaSet", replicaset, container,
                  gpus, cpu_share, {"app": deployment, "pod-template-hash": template_hash})


def node_pods(index: int, gpus: int, rng: random.Random) -> list[SimPod]:
    """The pods of node ``index`` with ``gpus`` GPUs (see the module docstring); GPUs past the pods' are free."""
    free = list(range(gpus))

    def take(n: int) -> tuple[int, ...]:
        held = tuple(free[:n])
        del free[:n]
        return held

    research = ("research-nlp", "research-vision")[index % 2]
    pods = [_deployment(rng, research, "train", "trainer", take(2), 0.40),
            _deployment(rng, "search", "web", "server", take(1), 0.25)]
    if index % 2 == 0:
        pods.append(SimPod("batch", f"{BATCH_JOB}-{_suffix(rng, 5)}", _uid(rng), "Job", BATCH_JOB, "sweep",
                           take(1), 0.10, {"job-name": BATCH_JOB}))
    pods.append(SimPod("monitoring", f"node-exporter-{_suffix(rng, 5)}", _uid(rng), "DaemonSet", "node-exporter",
                       "node-exporter", (), 0.02, {"app": "node-exporter"}))
    return pods


@dataclass(frozen=True)
class PodsSetup:
    """What the fleet gives a node for its pods: a folder, a generator, and the fleet's API server."""

    root: Path
    rng: random.Random
    apiserver_url: str
    token_file: Path


class NodePods:
    """One node's pods: its fake kubelet and cgroup tree, advanced at every tick of the node."""

    def __init__(self, root: Path, node: str, pods: list[SimPod], gpu_uuids: list[str], cpus: int,
                 rng: random.Random, apiserver_url: str = "", token_file: Path | None = None) -> None:
        self.node, self.pods, self.rng = node, pods, rng
        self.apiserver_url, self.token_file = apiserver_url, token_file
        self.tree = FakeCgroupTree(root / "node", cpus=cpus)
        self.cgroup_of: dict[str, str] = {}
        for p in pods:
            self.tree.add_pod(p.namespace, p.name, p.uid)
            self.cgroup_of[p.name] = pod_slice(p.uid)
        # A unix socket's path is limited to ~107 bytes: the socket lives in a short folder of its own.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="wattfleet-kubelet-"))
        self.kubelet = FakeKubelet(self._socket_dir / "kubelet.sock", [
            KubeletPod(p.namespace, p.name, [FakeContainer(p.container, {GPU_RESOURCE: [gpu_uuids[g] for g in p.gpus]}
                                                           if p.gpus else {})], p.uid) for p in pods]).start()

    @property
    def socket_path(self) -> Path:
        return self.kubelet.socket_path

    @classmethod
    def on_node(cls, setup: PodsSetup, index: int, node: str, gpu_uuids: list[str], cpus: int) -> NodePods:
        """Node ``index``'s pods (:func:`node_pods`) under ``setup.root``."""
        return cls(setup.root, node, node_pods(index, len(gpu_uuids), setup.rng), gpu_uuids, cpus, setup.rng,
                   setup.apiserver_url, setup.token_file)

    def sensor(self, clock: Callable[[], float]) -> WorkloadSensor:
        """The exporter's workload collector as ``wattfleet exporter`` builds it on such a node.

        The flags it stands for: the kubelet socket, ``--workload-cgroups kubernetes`` with this node's
        cgroup root, /proc/stat and pod log folder, owners from the API server's pod list of the node;
        its refreshes and retention in simulated seconds (``clock``).
        """
        cgroups = CgroupConfig(self.tree.cgroup_root, parse_patterns(["kubernetes"]), self.tree.proc_stat,
                               self.tree.pod_logs)
        owners = PodOwnerReader(self.apiserver_url, self.node, self.token_file, None, timeout=1.0) \
            if self.apiserver_url else None
        return WorkloadSensor(PodResourcesClient(str(self.socket_path), timeout=1.0), cgroups,
                              refresh=REFRESH_SECONDS, clock=clock,
                              owners=owners, owners_refresh=REFRESH_SECONDS)

    def api_objects(self) -> list[dict[str, Any]]:
        """The pods as the API server lists them (metadata.ownerReferences, labels, spec.nodeName)."""
        out = []
        for p in self.pods:
            obj = api_pod(p.namespace, p.name, self.node, owner=(p.owner_kind, p.owner_name), labels=p.labels)
            obj["metadata"]["uid"] = p.uid
            out.append(obj)
        return out

    def api_jobs(self) -> list[dict[str, Any]]:
        """The Jobs of the node's Job pods, as the API server answers them (the exporter asks for their owner)."""
        return [api_job(p.namespace, p.owner_name, uid=f"uid-job-{p.owner_name}") for p in self.pods
                if p.owner_kind == "Job"]

    def run(self, seconds: float, cpu_load: float) -> None:
        """``seconds`` pass with the node's CPUs busy ``cpu_load`` of the time; each pod takes its share."""
        busy = max(cpu_load, 0.0) * self.tree.cpus * seconds
        usage = {self.cgroup_of[p.name]: busy * p.cpu_share * self.rng.uniform(1 - CPU_JITTER, 1 + CPU_JITTER)
                 for p in self.pods}
        self.tree.run(seconds, usage, system_seconds=max(busy - sum(usage.values()), 0.0))

    def stop(self) -> None:
        self.kubelet.stop()
        shutil.rmtree(self._socket_dir, ignore_errors=True)
