"""A fake Kubernetes API server: ``GET /api/v1/pods?fieldSelector=spec.nodeName=<node>`` and
``GET /apis/batch/v1/namespaces/<ns>/jobs/<name>``.

Serves a ``v1.PodList`` (JSON, as the API server writes it: ``kind``,
``apiVersion``, ``metadata``, ``items``) of the pods tests give it, filtered by
the node in the field selector, on 127.0.0.1 over HTTP or HTTPS (a
certificate and key), and checks the bearer token (401 otherwise). It can go
down (503), answer slowly (``delay`` seconds before the body, or the body
dripped) and pad its answer (``pad_bytes``) to test the exporter's deadline
and size cap. Counts the requests it answered. Jobs (``jobs``, made by :func:`job`) are answered one by one,
404 when absent (a ``v1.Status``, as the API server writes it), or ``job_status`` (e.g. 403 without RBAC) for
every Job; ``job_delay`` slows Job answers only.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def pod(namespace: str, name: str, node: str, owner: tuple[str, str] | None = None,
        labels: dict[str, str] | None = None, controller: bool = True) -> dict[str, Any]:
    """A pod object with the fields the exporter reads (metadata.ownerReferences, labels, spec.nodeName)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}",
                            "labels": dict(labels or {})}
    if owner is not None:
        kind, owner_name = owner
        group = {"ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
                 "Job": "batch/v1"}.get(kind, "v1")
        meta["ownerReferences"] = [{"apiVersion": group, "kind": kind, "name": owner_name,
                                    "uid": f"uid-{owner_name}", "controller": controller,
                                    "blockOwnerDeletion": True}]
    return {"metadata": meta, "spec": {"nodeName": node, "containers": [{"name": "main", "image": "x"}]},
            "status": {"phase": "Running"}}


def job(namespace: str, name: str, cronjob: str | None = None, uid: str | None = None,
        controller: bool = True) -> dict[str, Any]:
    """A ``batch/v1`` Job; with ``cronjob``, controlled by that CronJob as the CronJob controller makes it."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}"}
    if cronjob is not None:
        meta["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "CronJob", "name": cronjob,
                                    "uid": f"uid-{cronjob}", "controller": controller, "blockOwnerDeletion": True}]
    return {"kind": "Job", "apiVersion": "batch/v1", "metadata": meta,
            "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "x"}]}}}, "status": {}}


class FakeApiServer:
    """The pod list endpoint on ``url``; ``pods`` may be changed while it runs."""

    def __init__(self, pods: list[dict[str, Any]], token: str = "secret-token",
                 tls: tuple[Path, Path] | None = None, jobs: list[dict[str, Any]] | None = None) -> None:
        self.pods = pods
        self.jobs = {(j["metadata"]["namespace"], j["metadata"]["name"]): j for j in jobs or []}
        self.job_status = 200
        self.job_delay = 0.0
        self.token = token
        self.down = False
        self.delay = 0.0
        self.drip: float = 0.0  # seconds between 1 KiB pieces of the body
        self.pad_bytes = 0
        self.requests = 0
        self.paths: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet in tests
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                fake.paths.append(self.path)
                fake.requests += 1
                if fake.down:
                    self._send(503, b'{"kind":"Status","status":"Failure","code":503}')
                    return
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._send(401, b'{"kind":"Status","status":"Failure","reason":"Unauthorized","code":401}')
                    return
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                node = None
                for sel in query.get("fieldSelector", []):
                    if sel.startswith("spec.nodeName="):
                        node = sel.split("=", 1)[1]
                parts = url.path.split("/")
                if len(parts) == 8 and parts[1:4] == ["apis", "batch", "v1"] and parts[4] == "namespaces" \
                        and parts[6] == "jobs":
                    self._job(urllib.parse.unquote(parts[5]), urllib.parse.unquote(parts[7]))
                    return
                if url.path != "/api/v1/pods":
                    self._send(404, b'{"kind":"Status","code":404}')
                    return
                items = [p for p in fake.pods if node is None or p["spec"]["nodeName"] == node]
                doc: dict[str, Any] = {"kind": "PodList", "apiVersion": "v1",
                                       "metadata": {"resourceVersion": "12345"}, "items": items}
                if fake.pad_bytes:
                    doc["metadata"]["padding"] = "x" * fake.pad_bytes  # unknown fields: ignored by readers
                time.sleep(fake.delay)
                self._send(200, json.dumps(doc).encode())

            def _job(self, namespace: str, name: str) -> None:
                time.sleep(fake.job_delay)
                found = fake.jobs.get((namespace, name))
                status = fake.job_status if fake.job_status != 200 else 200 if found is not None else 404
                if status != 200:
                    self._send(status, json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                   "code": status}).encode())
                    return
                self._send(200, json.dumps(found).encode())

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if not fake.drip:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if not fake.drip:
                        self.wfile.write(body)
                        return
                    for i in range(0, len(body), 1024):
                        self.wfile.write(body[i:i + 1024])
                        self.wfile.flush()
                        time.sleep(fake.drip)
                except OSError:
                    pass  # the client gave up (its deadline): expected

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-apiserver", daemon=True)   # a quick shutdown in tests
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
