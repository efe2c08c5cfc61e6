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
the Deployment controller names its ReplicaSets); a Job owned by a CronJob
stays ``job/<name>`` (knowing the CronJob needs the Job object itself).
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # a node's pod list (maxPods 110, rarely 500 pods of ~10 KiB each) fits easily
MAX_PODS = 5000
POD_TEMPLATE_HASH = "pod-template-hash"
_KINDS = {"StatefulSet": "statefulset", "DaemonSet": "daemonset", "Job": "job", "ReplicaSet": "replicaset"}
_CHUNK = 64 * 1024


class OwnersUnavailable(Exception):
    """The pod list could not be read; ``reason`` is the ``collector_errors_total`` reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def owner_of(pod: Mapping[str, Any]) -> str:
    """``kind/name`` of the pod's controller (see the module docstring); ``pod/<name>`` without one."""
    meta = pod.get("metadata") or {}
    name = str(meta.get("name", ""))
    refs = meta.get("ownerReferences") or []
    ref = next((r for r in refs if isinstance(r, Mapping) and r.get("controller") is True), None)
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


def parse_pod_list(body: bytes) -> dict[tuple[str, str], str]:
    """(namespace, pod) -> owner of every pod in a ``v1.PodList``; OwnersUnavailable when it is not one."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OwnersUnavailable("apiserver_invalid", f"pod list is not JSON: {exc}") from None
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("kind") != "PodList" or not isinstance(items, list):
        raise OwnersUnavailable("apiserver_invalid", "answer is not a PodList with items")
    if len(items) > MAX_PODS:
        raise OwnersUnavailable("apiserver_oversized", f"{len(items)} pods in the list (more than {MAX_PODS})")
    out: dict[tuple[str, str], str] = {}
    for pod in items:
        meta = pod.get("metadata") if isinstance(pod, dict) else None
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) \
                or not isinstance(meta.get("namespace"), str):
            continue  # not a pod we could name anyway
        out[(meta["namespace"], meta["name"])] = owner_of(pod)
    return out


class PodOwnerReader:
    """Reads the pods of ``node`` from the API server at ``base_url`` (https in a cluster; http in tests)."""

    def __init__(self, base_url: str, node: str, token_file: Path | None, ca_file: Path | None,
                 timeout: float = 5.0, max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self.url = urllib.parse.urlsplit(base_url)
        if self.url.scheme not in ("http", "https") or not self.url.hostname:
            raise ValueError(f"API server URL {base_url!r} is not http(s)://host[:port]")
        self.node, self.token_file, self.timeout, self.max_bytes = node, token_file, timeout, max_bytes
        self._tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None) \
            if self.url.scheme == "https" else None

    @property
    def path(self) -> str:
        selector = urllib.parse.quote(f"spec.nodeName={self.node}", safe="=")
        return f"/api/v1/pods?fieldSelector={selector}"

    def read(self) -> dict[tuple[str, str], str]:
        """One list call under the total deadline ``timeout``; OwnersUnavailable on any failure."""
        deadline = time.monotonic() + self.timeout
        headers = {"Accept": "application/json"}
        if self.token_file is not None:
            try:
                headers["Authorization"] = "Bearer " + self.token_file.read_text().strip()  # re-read: it rotates
            except OSError as exc:
                raise OwnersUnavailable("apiserver_token", f"service account token {self.token_file}: {exc}") from None
        host, port = self.url.hostname or "", self.url.port
        conn: http.client.HTTPConnection = (
            http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._tls)
            if self._tls is not None else http.client.HTTPConnection(host, port, timeout=self.timeout))
        try:
            conn.request("GET", self.path, headers=headers)
            resp = conn.getresponse()
            if resp.status != 200:
                raise OwnersUnavailable("apiserver_unavailable", f"GET {self.path}: HTTP {resp.status}")
            declared = resp.getheader("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                raise OwnersUnavailable("apiserver_oversized", f"answer of {declared} bytes (cap {self.max_bytes})")
            body = bytearray()
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OwnersUnavailable("apiserver_timeout", f"pod list not read within {self.timeout:g} s")
                if conn.sock is not None:
                    conn.sock.settimeout(left)
                chunk = resp.read1(_CHUNK)
                if not chunk:
                    break
                body += chunk
                if len(body) > self.max_bytes:
                    raise OwnersUnavailable("apiserver_oversized", f"answer over {self.max_bytes} bytes")
        except TimeoutError:
            raise OwnersUnavailable("apiserver_timeout", f"pod list not read within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise OwnersUnavailable("apiserver_unavailable", f"GET {self.path}: {exc}") from None
        finally:
            conn.close()
        return parse_pod_list(bytes(body))


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
