"""Wiring the ``workload`` collector into the exporter from its flags.

GPU attribution runs when the kubelet's pod-resources socket directory exists
(a Kubernetes node; the socket itself may come and go with the kubelet) or
the socket is named explicitly; CPU/DRAM attribution when
``--workload-cgroups`` names patterns. With neither, the collector is absent.
Pod owners (the ``workload`` label) are read from the API server when the
exporter runs in a pod (in-cluster config present), a node name is known and
``--kubernetes.pod-owners`` is not turned off.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.sensors.base import SensorUnavailable
from wattfleet.exporter.workloads.cgroups import CgroupPatternError, parse_patterns
from wattfleet.exporter.workloads.owners import PodOwnerReader, in_cluster_reader
from wattfleet.exporter.workloads.sensor import CgroupConfig, DeviceLister, WorkloadSensor

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"


class WorkloadConfigError(ValueError):
    """A workload flag that cannot work; the message names the flag."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubelet.pod-resources-socket", dest="kubelet_socket", default=DEFAULT_SOCKET, metavar="PATH",
                   help="the kubelet's pod-resources gRPC socket: GPU energy by pod and container is attributed "
                        "when its directory exists; '' turns it off (default %(default)s)")
    p.add_argument("--kubelet.refresh-interval", dest="kubelet_refresh", type=float, default=5.0, metavar="SECONDS",
                   help="how often the GPU-to-pod mapping is asked of the kubelet (default 5)")
    p.add_argument("--kubelet.timeout", dest="kubelet_timeout", type=float, default=1.0, metavar="SECONDS",
                   help="deadline of one pod-resources call; past it the last mapping is kept and the failure "
                        "counted (default 1)")
    p.add_argument("--workload-cgroups", dest="workload_cgroups", action="append", default=[], metavar="SPEC",
                   help="attribute CPU and DRAM energy to the cgroups this names, by their CPU time: 'kubernetes' "
                        "(pod cgroups), 'slurm' (system.slice/slurmstepd.scope/job_{id}) or KIND:PATTERN (path "
                        "under --cgroup-root with * and one {id}; workload label KIND/{id}); repeatable "
                        "(default: none, no CPU/DRAM attribution)")
    p.add_argument("--cgroup-root", default="/sys/fs/cgroup", metavar="DIR",
                   help="the cgroup v2 hierarchy (default /sys/fs/cgroup)")
    p.add_argument("--procfs-root", default="/proc", metavar="DIR",
                   help="procfs; the node's CPU time is read from DIR/stat (default /proc)")
    p.add_argument("--pod-logs-dir", default="/var/log/pods", metavar="DIR",
                   help="the kubelet's pod log directories, <namespace>_<pod>_<uid>: map pod cgroups to pod "
                        "names (default /var/log/pods)")
    p.add_argument("--kubernetes.pod-owners", dest="pod_owners", action=argparse.BooleanOptionalAction, default=True,
                   help="fill the workload label of pod series with the pod's owner (deployment/NAME, "
                        "statefulset/NAME, daemonset/NAME, cronjob/NAME, job/NAME, replicaset/NAME, pod/NAME) from "
                        "the API server's pod list of this node and the Jobs controlling its pods, when running in a "
                        "pod (in-cluster service account); "
                        "--no-kubernetes.pod-owners turns it off (default on)")
    p.add_argument("--kubernetes.node-name", dest="node_name", default=os.environ.get("NODE_NAME", ""),
                   metavar="NAME", help="this node's name, for the pod list's fieldSelector spec.nodeName "
                                        "(default: env NODE_NAME; empty: no owners)")
    p.add_argument("--kubernetes.pods-refresh-interval", dest="pods_refresh", type=float, default=30.0,
                   metavar="SECONDS", help="how often the node's pod list is read for owners (default 30)")
    p.add_argument("--kubernetes.api-timeout", dest="api_timeout", type=float, default=1.0, metavar="SECONDS",
                   help="deadline of one refresh: the pod list and its Job reads (keep it under the collector "
                        "deadline, twice --interval "
                        "and at least 2 s); past it the last owners are kept and the failure counted (default 1)")
    p.add_argument("--workload-retention", type=float, default=600.0, metavar="SECONDS",
                   help="how long a gone workload's energy counters are still published (default 600)")


def _client(args: argparse.Namespace) -> DeviceLister | None:
    socket = args.kubelet_socket
    if not socket or not Path(socket).parent.is_dir():
        return None
    try:
        from wattfleet.exporter.workloads.kubelet import PodResourcesClient  # lazy: optional extra kubernetes
    except ImportError as exc:
        raise SensorUnavailable(f"the kubelet's pod-resources socket directory exists but grpcio/protobuf are not "
                                f"installed (pip install 'wattfleet[kubernetes]'): {exc}") from None
    return PodResourcesClient(socket, timeout=args.kubelet_timeout)


def build_workload_sensor(args: argparse.Namespace) -> WorkloadSensor:
    """The collector as the flags say; SensorUnavailable when there is nothing to attribute."""
    if args.kubelet_refresh <= 0 or args.kubelet_timeout <= 0 or args.workload_retention < 0:
        raise WorkloadConfigError("--kubelet.refresh-interval and --kubelet.timeout must be positive, "
                                  "--workload-retention not negative")
    if args.pods_refresh <= 0 or args.api_timeout <= 0:
        raise WorkloadConfigError("--kubernetes.pods-refresh-interval and --kubernetes.api-timeout must be positive")
    try:
        patterns = parse_patterns(args.workload_cgroups)
    except CgroupPatternError as exc:
        raise WorkloadConfigError(f"--workload-cgroups {exc}") from None
    cgroups = None
    if patterns:
        cgroups = CgroupConfig(Path(args.cgroup_root), patterns, Path(args.procfs_root) / "stat",
                               Path(args.pod_logs_dir) if args.pod_logs_dir else None)
    lister = _client(args)
    if lister is None and cgroups is None:
        raise SensorUnavailable("no kubelet pod-resources socket directory and no --workload-cgroups")
    owners = _owners(args)
    return WorkloadSensor(lister, cgroups, refresh=args.kubelet_refresh, retention=args.workload_retention,
                          owners=owners, owners_refresh=args.pods_refresh)


def _owners(args: argparse.Namespace) -> PodOwnerReader | None:
    if not args.pod_owners:
        return None
    reader = in_cluster_reader(args.node_name, args.api_timeout)
    if reader is None:
        log.info("workload owners off: not in a Kubernetes pod (no KUBERNETES_SERVICE_HOST or service account "
                 "token) or no node name (--kubernetes.node-name / NODE_NAME)")
    return reader


def attach_workloads(sampler: Sampler, sensor: WorkloadSensor) -> None:
    """Add the collector after the energy collectors and hook its attribution into every sample."""
    sensor.const_labels = dict(sampler.const_labels)
    sampler.sensors.append(sensor)
    sampler.add_observer(sensor.observe)
