"""Pod owners on this node from the Kubernetes API server: the ``workload`` label of pod series.

The kubelet's pod-resources API and the cgroup tree name pods, never their
owners; only the API server knows them (``metadata.ownerReferences``). One
``GET /api/v1/pods?fieldSelector=spec.nodeName=<node>`` every refresh
interval, with the standard library only (in-cluster config: the service
account token and CA under :data:`SERVICE_ACCOUNT_DIR`), a total deadline and
a cap on the answer's size. A failed call raises :class:`OwnersUnavailable`
with a reason the sensor counts; the last answer stays in use (owners never
block energy).

The owner rule (:func:`owner_of`) takes the controller reference and never
guesses: a ReplicaSet becomes ``deployment/<name>`` only when its name is the
Deployment's name plus ``-`` plus the pod's ``pod-template-hash`` label (how
the Deployment controller names its ReplicaSets).

A Job's CronJob is not on the pod: the CronJob controller names each run's Job
``<cronjob>-<scheduled minute>`` and sets the CronJob as the Job's own
controller reference (``kind: CronJob``, ``apiVersion: batch/v1``). So for a
pod whose controller is a Job the reader gets that Job
(``GET /apis/batch/v1/namespaces/<ns>/jobs/<name>``, same token, CA, deadline
and size cap) and the pod becomes ``cronjob/<name>``; never from the Job's
name. A Job's controller never changes, so the answer is cached per
(namespace, Job, Job uid) in a bounded LRU (:data:`MAX_CACHED_JOBS`), and at
most :data:`MAX_JOB_READS` Jobs are read per refresh, all within the pod
list's deadline; the rest stay ``job/<name>`` until a later refresh reads them.
A failed Job read leaves ``job/<name>`` and is counted
(``reason="apiserver_job_*"``, :meth:`PodOwnerReader.job_errors`); a 403/401
(RBAC without ``get`` on ``batch`` ``jobs``) stops Job reads for a backoff
(:data:`FORBIDDEN_BACKOFF_S`, doubling up to :data:`FORBIDDEN_BACKOFF_MAX_S`)
instead of being retried every refresh for every Job.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # a node's pod list (maxPods 110, rarely 500 pods of ~10 KiB each) fits easily
MAX_PODS = 5000
# Jobs whose controller is known. A node's live Jobs are at most the pods of one list (MAX_PODS), so the ones
# in use always fit and are never read twice; least recently seen first out, so finished Jobs (never deleted
# from here otherwise: nothing watches Job deletions) do not grow it. ~5000 short entries are ~1-2 MiB.
MAX_CACHED_JOBS = MAX_PODS
# Job reads per refresh (pod list interval, 30 s by default): a node starting hundreds of short Jobs costs
# the API server 8 GETs a refresh at most; the backlog is read over the next refreshes.
MAX_JOB_READS = 8
MAX_JOB_BYTES = 1024 * 1024  # one Job object (its pod template included) is a few KiB to tens of KiB
FORBIDDEN_BACKOFF_S = 300.0
FORBIDDEN_BACKOFF_MAX_S = 3600.0
POD_TEMPLATE_HASH = "pod-template-hash"
_KINDS = {"StatefulSet": "statefulset", "DaemonSet": "daemonset", "Job": "job", "ReplicaSet": "replicaset"}
_CHUNK = 64 * 1024


class OwnersUnavailable(Exception):
    """The pod list could not be read; ``reason`` is the ``collector_errors_total`` reason."""

    def __init__(self, reason: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status  # the HTTP status of a non-200 answer


@dataclass(frozen=True)
class JobRef:
    """The Job controlling a pod: ``uid`` is the one in the pod's reference ("" if it had none)."""

    namespace: str
    name: str
    uid: str


def controller_ref(meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``ownerReferences`` entry with ``controller: true`` (at most one per object), or None."""
    refs = meta.get("ownerReferences") or []
    if not isinstance(refs, list):
        return None
    return next((r for r in refs if isinstance(r, Mapping) and r.get("controller") is True), None)


def owner_of(pod: Mapping[str, Any]) -> str:
    """``kind/name`` of the pod's controller (see the module docstring); ``pod/<name>`` without one."""
    meta = pod.get("metadata") or {}
    name = str(meta.get("name", ""))
    ref = controller_ref(meta)
    if ref is None:
        return f"pod/{name}"
    kind, owner = str(ref.get("kind", "")), str(ref.get("name", ""))
    if kind == "ReplicaSet":
        labels = meta.get("labels") or {}
        digest = labels.get(POD_TEMPLATE_HASH) if isinstance(labels, Mapping) else None
        suffix = f"-{digest}"
        if isinstance(digest, str) and digest and owner.endswith(suffix) and len(owner) > len(suffix):
            return f"deployment/{owner[:-len(suffix)]}"
    return f"{_KINDS.get(kind, kind.lower())}/{owner}"


def job_of(pod: Mapping[str, Any]) -> JobRef | None:
    """The pod's controlling Job (a ``batch`` ``Job`` controller reference), or None."""
    meta = pod.get("metadata") or {}
    ref = controller_ref(meta)
    if ref is None or ref.get("kind") != "Job" or not str(ref.get("apiVersion", "")).startswith("batch/"):
        return None
    name, namespace, uid = ref.get("name"), meta.get("namespace"), ref.get("uid", "")
    if not isinstance(name, str) or not name or not isinstance(namespace, str) or not isinstance(uid, str):
        return None
    return JobRef(namespace, name, uid)


def job_owner(body: bytes, job: JobRef) -> str:
    """``cronjob/<name>`` when the ``batch/v1`` Job answer's controller is a CronJob, else ``job/<name>``.

    OwnersUnavailable (``apiserver_invalid``) when the answer is not this Job. A Job of the same name but
    another uid (the old one deleted, a new one made) is not the pod's Job: ``job/<name>``.
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OwnersUnavailable("apiserver_invalid", f"Job {job.namespace}/{job.name} is not JSON: {exc}") from None
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("kind") != "Job" or not isinstance(meta, dict) \
            or meta.get("name") != job.name:
        raise OwnersUnavailable("apiserver_invalid", f"answer is not the Job {job.namespace}/{job.name}")
    fallback = f"job/{job.name}"
    if job.uid and meta.get("uid") != job.uid:
        return fallback
    ref = controller_ref(meta)
    if ref is None or ref.get("kind") != "CronJob" or not str(ref.get("apiVersion", "")).startswith("batch/"):
        return fallback
    owner = ref.get("name")
    return f"cronjob/{owner}" if isinstance(owner, str) and owner else fallback


def parse_pods(body: bytes) -> dict[tuple[str, str], tuple[str, JobRef | None]]:
    """(namespace, pod) -> (owner by the pod rule, controlling Job) of every pod in a ``v1.PodList``;
    OwnersUnavailable when it is not one."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OwnersUnavailable("apiserver_invalid", f"pod list is not JSON: {exc}") from None
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("kind") != "PodList" or not isinstance(items, list):
        raise OwnersUnavailable("apiserver_invalid", "answer is not a PodList with items")
    if len(items) > MAX_PODS:
        raise OwnersUnavailable("apiserver_oversized", f"{len(items)} pods in the list (more than {MAX_PODS})")
    out: dict[tuple[str, str], tuple[str, JobRef | None]] = {}
    for pod in items:
        meta = pod.get("metadata") if isinstance(pod, dict) else None
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) \
                or not isinstance(meta.get("namespace"), str):
            continue  # not a pod we could name anyway
        out[(meta["namespace"], meta["name"])] = (owner_of(pod), job_of(pod))
    return out


class PodOwnerReader:
    """Reads the pods of ``node`` from the API server at ``base_url`` (https in a cluster; http in tests)."""

    def __init__(self, base_url: str, node: str, token_file: Path | None, ca_file: Path | None,
                 timeout: float = 5.0, max_bytes: int = MAX_RESPONSE_BYTES, max_job_reads: int = MAX_JOB_READS,
                 max_cached_jobs: int = MAX_CACHED_JOBS, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = urllib.parse.urlsplit(base_url)
        if self.url.scheme not in ("http", "https") or not self.url.hostname:
            raise ValueError(f"API server URL {base_url!r} is not http(s)://host[:port]")
        self.node, self.token_file, self.timeout, self.max_bytes = node, token_file, timeout, max_bytes
        self.max_job_reads, self.max_cached_jobs, self.clock = max_job_reads, max_cached_jobs, clock
        self._tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None) \
            if self.url.scheme == "https" else None
        self._jobs: OrderedDict[JobRef, str] = OrderedDict()  # Job -> owner, least recently seen first
        self._job_errors: list[str] = []
        self._forbidden_until = float("-inf")
        self._forbidden_backoff = FORBIDDEN_BACKOFF_S

    @property
    def path(self) -> str:
        selector = urllib.parse.quote(f"spec.nodeName={self.node}", safe="=")
        return f"/api/v1/pods?fieldSelector={selector}"

    @staticmethod
    def job_path(job: JobRef) -> str:
        ns, name = urllib.parse.quote(job.namespace, safe=""), urllib.parse.quote(job.name, safe="")
        return f"/apis/batch/v1/namespaces/{ns}/jobs/{name}"

    def job_errors(self) -> list[str]:
        """The ``apiserver_job_*`` reasons of the Job reads of the last :meth:`read` that failed."""
        return list(self._job_errors)

    def read(self) -> dict[tuple[str, str], str]:
        """The pod list and up to ``max_job_reads`` Jobs, all under the total deadline ``timeout``.

        OwnersUnavailable when the pod list fails; a failed Job read only leaves its pods ``job/<name>``.
        """
        deadline = time.monotonic() + self.timeout
        self._job_errors = []
        headers = {"Accept": "application/json"}
        if self.token_file is not None:
            try:
                headers["Authorization"] = "Bearer " + self.token_file.read_text().strip()  # re-read: it rotates
            except OSError as exc:
                raise OwnersUnavailable("apiserver_token", f"service account token {self.token_file}: {exc}") from None
        pods = parse_pods(self._get(self.path, headers, deadline, self.max_bytes, "pod list"))
        return self._resolve_jobs(pods, headers, deadline)

    def _resolve_jobs(self, pods: Mapping[tuple[str, str], tuple[str, JobRef | None]], headers: dict[str, str],
                      deadline: float) -> dict[tuple[str, str], str]:
        wanted = list(dict.fromkeys(job for _, job in pods.values() if job is not None))  # first-seen order
        for job in wanted:
            if job in self._jobs:
                self._jobs.move_to_end(job)   # still in use: kept by the LRU
        reads = 0
        for job in wanted:
            if job in self._jobs:
                continue
            if reads >= self.max_job_reads or self.clock() < self._forbidden_until \
                    or time.monotonic() >= deadline:
                break
            reads += 1
            try:
                owner = job_owner(self._get(self.job_path(job), headers, deadline, MAX_JOB_BYTES, "Job"), job)
            except OwnersUnavailable as exc:
                self._job_errors.append(exc.reason.replace("apiserver_", "apiserver_job_", 1) if exc.status is None
                                        else "apiserver_job_forbidden" if exc.status in (401, 403)
                                        else "apiserver_job_not_found" if exc.status == 404
                                        else "apiserver_job_unavailable")
                if exc.status == 404 or exc.reason in ("apiserver_invalid", "apiserver_oversized"):
                    # gone (its pods are going too), or an answer that will not improve: do not ask again,
                    # so a few bad Jobs cannot take every refresh's reads from the others
                    owner = f"job/{job.name}"
                elif exc.status in (401, 403):
                    self._forbidden_until = self.clock() + self._forbidden_backoff
                    self._forbidden_backoff = min(self._forbidden_backoff * 2, FORBIDDEN_BACKOFF_MAX_S)
                    break
                else:
                    break      # timeout or API server trouble: no more Jobs this refresh
            else:
                self._forbidden_backoff = FORBIDDEN_BACKOFF_S
            self._jobs[job] = owner
            while len(self._jobs) > self.max_cached_jobs:
                self._jobs.popitem(last=False)
        return {key: (self._jobs.get(job, owner) if job is not None else owner)
                for key, (owner, job) in pods.items()}

    def _get(self, path: str, headers: dict[str, str], deadline: float, max_bytes: int, what: str) -> bytes:
        """The body of one GET answered 200, read by ``deadline`` and within ``max_bytes``."""
        host, port = self.url.hostname or "", self.url.port
        left = deadline - time.monotonic()
        if left <= 0:
            raise OwnersUnavailable("apiserver_timeout", f"{what} not read within {self.timeout:g} s")
        conn: http.client.HTTPConnection = (
            http.client.HTTPSConnection(host, port, timeout=left, context=self._tls)
            if self._tls is not None else http.client.HTTPConnection(host, port, timeout=left))
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            if resp.status != 200:
                raise OwnersUnavailable("apiserver_unavailable", f"GET {path}: HTTP {resp.status}", resp.status)
            declared = resp.getheader("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise OwnersUnavailable("apiserver_oversized", f"{what} of {declared} bytes (cap {max_bytes})")
            body = bytearray()
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OwnersUnavailable("apiserver_timeout", f"{what} not read within {self.timeout:g} s")
                if conn.sock is not None:
                    conn.sock.settimeout(left)
                chunk = resp.read1(_CHUNK)
                if not chunk:
                    break
                body += chunk
                if len(body) > max_bytes:
                    raise OwnersUnavailable("apiserver_oversized", f"{what} over {max_bytes} bytes")
        except TimeoutError:
            raise OwnersUnavailable("apiserver_timeout", f"{what} not read within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise OwnersUnavailable("apiserver_unavailable", f"GET {path}: {exc}") from None
        finally:
            conn.close()
        return bytes(body)


def in_cluster_reader(node: str, timeout: float, environ: Mapping[str, str] = os.environ,
                      account_dir: Path = SERVICE_ACCOUNT_DIR) -> PodOwnerReader | None:
    """The reader a pod's in-cluster config gives; None when not in a cluster (no service host or token)."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST", ""), environ.get("KUBERNETES_SERVICE_PORT", "443")
    token = account_dir / "token"
    if not host or not node or not token.is_file():
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 service address
    ca = account_dir / "ca.crt"
    return PodOwnerReader(f"https://{host}:{port}", node, token, ca if ca.is_file() else None, timeout=timeout)
