"""The HTTP client for PromQL stores: deadlines, size caps, credentials and tenants as real deployments need.

A long-term store behind an authenticating proxy (Grafana Mimir, Cortex,
Thanos, VictoriaMetrics cluster) needs a bearer token or basic auth, a
private CA, sometimes a client certificate, and a tenant header; a broken or
hostile one can drip bytes forever or answer with hundreds of megabytes.
This client bounds both: every attempt has one deadline for the whole
exchange (connect, headers and body; a watchdog closes the socket when it
passes, so a server sending a byte every few seconds cannot hold the run),
and a body over ``max_response_bytes`` is refused while it is read, before it
is parsed. 429 and 5xx answers are retried with exponential backoff; other
4xx are the caller's error and are not.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wattfleet.aggregator.grid.httpjson import basic_auth_header
from wattfleet.aggregator.ingest.telemetry import TelemetrySourceError

log = logging.getLogger(__name__)

_CHUNK = 1 << 16


@dataclass
class StoreAuth:
    """How to authenticate to the store; every field optional.

    ``bearer_token_file`` is re-read for each request, so a rotated
    Kubernetes service-account token or a Vault-managed file keeps working.
    ``tenant`` becomes ``X-Scope-OrgID`` (Mimir, Cortex, Loki convention);
    ``headers`` are sent as given (e.g. ``AccountID`` for VictoriaMetrics
    cluster behind vmauth).
    """

    bearer_token: str | None = None
    bearer_token_file: str | None = None
    basic_auth: tuple[str, str] | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False
    tenant: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def request_headers(self) -> dict[str, str]:
        out = dict(self.headers)
        token = self.bearer_token
        if self.bearer_token_file:
            try:
                token = Path(self.bearer_token_file).read_text().strip()
            except OSError as exc:
                raise TelemetrySourceError(f"bearer token file {self.bearer_token_file}: "
                                           f"{exc.strerror or exc}") from None
        if token:
            out["Authorization"] = f"Bearer {token}"
        elif self.basic_auth:
            out["Authorization"] = basic_auth_header(*self.basic_auth)
        if self.tenant:
            out["X-Scope-OrgID"] = self.tenant
        return out

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


class _Retryable(Exception):
    """One attempt failed in a way another attempt may not (timeout, reset, 429, 5xx)."""


@dataclass
class StoreClient:
    """POSTs form-encoded queries to ``{url}/api/v1/<path>`` and returns the ``data`` of a success answer."""

    url: str
    auth: StoreAuth = field(default_factory=StoreAuth)
    deadline_seconds: float = 60.0
    max_response_bytes: int = 64 << 20
    retries: int = 3
    backoff_seconds: float = 1.0
    requests_made: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"store URL {self.url!r} must be http(s)://host[:port][/prefix]")
        self._parts = parts
        self._context = self.auth.ssl_context() if parts.scheme == "https" else None

    def post(self, path: str, params: dict[str, Any]) -> Any:
        body = urllib.parse.urlencode(params).encode()
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            self.requests_made += 1
            try:
                payload = self._attempt(path, body, params)
                break
            except _Retryable as exc:
                last = exc
                log.warning("query to %s failed (attempt %d/%d): %s", self.url, attempt + 1, self.retries + 1, exc)
        else:
            raise TelemetrySourceError(f"{self.url} unreachable after {self.retries + 1} attempts: {last}")
        if not isinstance(payload, dict) or payload.get("status") != "success":
            error = payload.get("error") if isinstance(payload, dict) else payload
            kind = payload.get("errorType") if isinstance(payload, dict) else "bad answer"
            raise TelemetrySourceError(f"{self.url}: {kind}: {error}")
        return payload.get("data")

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self._parts.hostname or "", self._parts.port
        if self._context is not None:
            return http.client.HTTPSConnection(host, port, timeout=self.deadline_seconds, context=self._context)
        return http.client.HTTPConnection(host, port, timeout=self.deadline_seconds)

    def _attempt(self, path: str, body: bytes, params: dict[str, Any]) -> Any:
        conn = self._connection()
        expired = threading.Event()
        # The socket as connected: http.client drops conn.sock when an answer says `Connection: close`
        # (the response then reads through its own file object), so the watchdog keeps its own handle.
        opened: list[socket.socket] = []

        def cut() -> None:  # the deadline covers the whole exchange, however slowly bytes arrive
            expired.set()
            for sock in opened or ([conn.sock] if conn.sock is not None else []):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        watchdog = threading.Timer(self.deadline_seconds, cut)
        watchdog.daemon = True
        watchdog.start()
        try:
            conn.connect()
            if conn.sock is not None:
                opened.append(conn.sock)
            headers = {"Content-Type": "application/x-www-form-urlencoded", **self.auth.request_headers()}
            conn.request("POST", f"{self._parts.path}/api/v1/{path}", body=body, headers=headers)
            response = conn.getresponse()
            data = self._read(response)
            if expired.is_set():  # the watchdog cut the socket: what was read is a truncated answer
                raise OSError("deadline")
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set():
                raise _Retryable(f"no complete answer within {self.deadline_seconds:g} s") from None
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        finally:
            watchdog.cancel()
            conn.close()
        if response.status == 429 or response.status >= 500:
            raise _Retryable(f"HTTP {response.status}: {data[:500].decode(errors='replace')}")
        if response.status >= 400:
            raise TelemetrySourceError(f"{self.url}: HTTP {response.status} for {params.get('query')!r}: "
                                       f"{data[:500].decode(errors='replace')}")
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            raise _Retryable(f"answer is not JSON: {data[:200].decode(errors='replace')!r}") from None

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        length = response.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > self.max_response_bytes:
            raise TelemetrySourceError(self._too_big(int(length)))
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = response.read(_CHUNK)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_response_bytes:
                raise TelemetrySourceError(self._too_big(size))
            chunks.append(chunk)

    def _too_big(self, size: int) -> str:
        return (f"{self.url}: answer larger than {self.max_response_bytes >> 20} MiB ({size} bytes so far): "
                "query fewer hours per page (--page-hours) or raise --max-response-bytes")
