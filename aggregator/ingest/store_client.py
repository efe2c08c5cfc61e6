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
4xx are the caller's error and are not. Every request asks a federating store
not to answer partially (:data:`NO_PARTIAL_RESPONSE`), so one that misses a
store fails the query instead; an answer that is partial all the same
(:func:`partial_reason`) is retried as a 5xx is, and fails the run if it stays
partial: it would replace stored hours with less than the store holds.
"""

from __future__ import annotations

import email.utils
import http.client
import itertools
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from wattfleet.aggregator.grid.httpjson import basic_auth_header
from wattfleet.aggregator.ingest.matrix_stream import MatrixFormatError, iter_matrix
from wattfleet.aggregator.ingest.matrix_whole import decode_matrix
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


# A range answer up to this size is read whole and decoded in C (matrix_whole); a larger one is streamed a
# series at a time (matrix_stream). Decoded, an answer takes ~4x its bytes and ~5x at its peak in a sink
# (measured: 15.8 MB -> 60 MB, peak 83 MB), so each answer in flight holds at most ~50 MB; the 10,000-GPU
# week's answers (a 500-node shard over a day) are 1.8 MB.
WHOLE_ANSWER_BYTES = 8 << 20
MAX_RETRY_AFTER_SECONDS = 300.0  # a Retry-After longer than this is capped: the run's own deadline matters more


class SeriesSink(Protocol):
    """Takes the series of one answer as they are read (``stream_matrix``); ``done`` once it is complete."""

    def add(self, metric: dict[str, str], values: list[list[Any]]) -> None: ...

    def done(self) -> None: ...


S = TypeVar("S", bound=SeriesSink)


class _Retryable(Exception):
    """One attempt failed in a way another attempt may not (timeout, reset, 429, 5xx).

    ``retry_after``: the seconds the store asked for (``Retry-After``), if any.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


# Sent with every request: a federating store that misses a store or shard then fails the query (an error
# answer that stops the run, nothing written) instead of answering from the rest. Checking the answer
# (partial_reason) alone is not enough: a Thanos query-frontend before v0.35 (thanos-io/thanos#7289) drops
# the querier's warnings, so a partial answer reached the client as a clean success.
# - Thanos querier: `partial_response` (pkg/api/query/v1.go, PartialResponseParam, strconv.ParseBool) on
#   query, query_range, series, labels and label values; it overrides --query.partial-response, which is on
#   by default; its query-frontend parses and forwards it. Its /rules endpoint does not read it.
# - VictoriaMetrics cluster vmselect: `deny_partial_response` (any value but ""/0/f/false/no), as its
#   -search.denyPartialResponse flag does for every request.
# Prometheus 2.42 and single-node VictoriaMetrics 1.79 ignore both (tests: test_store_client.py).
NO_PARTIAL_RESPONSE: tuple[tuple[str, str], ...] = (("partial_response", "false"), ("deny_partial_response", "1"))

# Prometheus' own query annotations ("PromQL warning: ...", "PromQL info: ...") say nothing of missing data.
_ANNOTATION_PREFIX = "PromQL "


def partial_reason(top: Any) -> str:
    """Why an answer's top-level keys say it is partial ('' if they do not).

    VictoriaMetrics (cluster) flags an answer some vmstorage nodes missed with
    ``"isPartial": true``; Thanos (partial response enabled) and other
    federating stores answer ``success`` with ``warnings`` naming the stores
    that failed. A warning that is one of Prometheus' PromQL annotations is
    not about missing data and is accepted.
    """
    if not isinstance(top, dict):
        return ""
    if top.get("isPartial") is True:
        return "the store flags its answer as partial (isPartial)"
    warnings = top.get("warnings")
    if isinstance(warnings, list):
        other = [str(w) for w in warnings if not str(w).startswith(_ANNOTATION_PREFIX)]
        if other:
            return f"the store's answer carries warnings (a partial response): {'; '.join(other)[:500]}"
    return ""


def _parse_whole(chunks: Iterator[bytes]) -> Any:
    data = b"".join(chunks)
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise _Retryable(f"answer is not JSON: {data[:200].decode(errors='replace')!r}") from None


def _parse_stream(chunks: Iterator[bytes], sink: SeriesSink) -> Any:
    top = iter_matrix(chunks, sink.add)
    sink.done()
    return top


@dataclass
class StoreClient:
    """POSTs form-encoded queries to ``{url}/api/v1/<path>`` and returns the ``data`` of a success answer."""

    url: str
    auth: StoreAuth = field(default_factory=StoreAuth)
    deadline_seconds: float = 60.0
    max_response_bytes: int = 64 << 20
    retries: int = 3
    backoff_seconds: float = 1.0
    whole_answer_bytes: int = WHOLE_ANSWER_BYTES
    requests_made: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._count_lock = threading.Lock()  # requests run from several fetch threads (prefetch.in_order)
        self.url = self.url.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"store URL {self.url!r} must be http(s)://host[:port][/prefix]")
        self._parts = parts
        self._context = self.auth.ssl_context() if parts.scheme == "https" else None

    def post(self, path: str, params: dict[str, Any]) -> Any:
        """The ``data`` of the answer to a form-encoded POST, parsed whole (small answers)."""
        return self._with_retries(lambda: self._attempt("POST", path, params, _parse_whole))

    def get(self, path: str, params: list[tuple[str, str]] | dict[str, Any]) -> Any:
        """As :meth:`post` with a GET (APIs without a POST form, e.g. ``label/<name>/values``)."""
        return self._with_retries(lambda: self._attempt("GET", path, params, _parse_whole))

    def stream_matrix(self, path: str, params: dict[str, Any], new_sink: Callable[[], S]) -> S:
        """POST a range query and feed its series to a sink made fresh for each attempt.

        An answer over ``whole_answer_bytes`` is never held whole: its series
        are fed as they arrive (:mod:`.matrix_stream`). A smaller one is read
        whole and decoded in C (:mod:`.matrix_whole`) for a sink that takes it
        (``add_decoded``); should the sink refuse it, it is streamed from the
        bytes read into a fresh sink. An attempt that fails half-way (reset,
        deadline, 5xx) throws its sink away, so the returned sink holds
        exactly one complete answer.
        """
        def attempt() -> Any:
            return self._attempt("POST", path, params, lambda chunks: self._read_matrix(chunks, new_sink))
        data, sink = self._with_retries(attempt)
        del data
        return cast(S, sink)

    def _read_matrix(self, chunks: Iterator[bytes], new_sink: Callable[[], S]) -> tuple[Any, S]:
        sink = new_sink()
        add_decoded = getattr(sink, "add_decoded", None)
        if add_decoded is None or self.whole_answer_bytes <= 0:
            return _parse_stream(chunks, sink), sink
        head: list[bytes] = []
        size = 0
        for chunk in chunks:
            head.append(chunk)
            size += len(chunk)
            if size > self.whole_answer_bytes:  # too large to hold: a series at a time from here
                return _parse_stream(itertools.chain(head, chunks), sink), sink
        body = b"".join(head)
        del head
        decoded = decode_matrix(body)
        if decoded is not None and add_decoded(decoded[1]):
            return decoded[0], sink
        del decoded
        sink = new_sink()
        return _parse_stream(iter((body,)), sink), sink

    def _with_retries(self, attempt: Callable[[], Any]) -> Any:
        last: Exception | None = None
        wait = 0.0
        for n in range(self.retries + 1):
            if n:
                time.sleep(wait)
            with self._count_lock:
                self.requests_made += 1
            try:
                payload = attempt()
                break
            except _Retryable as exc:
                last = exc
                wait = max(self.backoff_seconds * 2 ** n, min(exc.retry_after or 0.0, MAX_RETRY_AFTER_SECONDS))
                log.warning("query to %s failed (attempt %d/%d): %s", self.url, n + 1, self.retries + 1, exc)
        else:
            raise TelemetrySourceError(f"{self.url} gave no usable answer after {self.retries + 1} attempts: {last}")
        top = payload[0] if isinstance(payload, tuple) else payload
        if not isinstance(top, dict) or top.get("status") != "success":
            error = top.get("error") if isinstance(top, dict) else top
            kind = top.get("errorType") if isinstance(top, dict) else "bad answer"
            raise TelemetrySourceError(f"{self.url}: {kind}: {error}")
        return (top.get("data"), payload[1]) if isinstance(payload, tuple) else top.get("data")

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self._parts.hostname or "", self._parts.port
        if self._context is not None:
            return http.client.HTTPSConnection(host, port, timeout=self.deadline_seconds, context=self._context)
        return http.client.HTTPConnection(host, port, timeout=self.deadline_seconds)

    def _attempt(self, method: str, path: str, params: list[tuple[str, str]] | dict[str, Any],
                 parse: Callable[[Iterator[bytes]], Any]) -> Any:
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

        pairs = list(params.items()) if isinstance(params, dict) else list(params)
        query = urllib.parse.urlencode(pairs + list(NO_PARTIAL_RESPONSE))
        what = dict(params).get("query") if isinstance(params, dict) else path
        watchdog = threading.Timer(self.deadline_seconds, cut)
        watchdog.daemon = True
        watchdog.start()
        try:
            conn.connect()
            if conn.sock is not None:
                opened.append(conn.sock)
            headers = self.auth.request_headers()
            target = f"{self._parts.path}/api/v1/{path}"
            if method == "POST":
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                conn.request("POST", target, body=query.encode(), headers=headers)
            else:
                conn.request("GET", f"{target}?{query}", headers=headers)
            response = conn.getresponse()
            if response.status == 429 or response.status >= 400:
                data = self._read(response)
                if expired.is_set():
                    raise OSError("deadline")
                retry_after = _retry_after_seconds(response.getheader("Retry-After"))
            else:
                result = parse(self._chunks(response, expired))
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set():
                raise _Retryable(f"no complete answer within {self.deadline_seconds:g} s") from None
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        except MatrixFormatError as exc:
            if expired.is_set():
                raise _Retryable(f"no complete answer within {self.deadline_seconds:g} s") from None
            raise _Retryable(f"answer is not a Prometheus API answer: {exc}") from None
        finally:
            watchdog.cancel()
            conn.close()
        if response.status == 429 or response.status >= 500:
            raise _Retryable(f"HTTP {response.status}: {data[:500].decode(errors='replace')}", retry_after)
        if response.status >= 400:
            raise TelemetrySourceError(f"{self.url}: HTTP {response.status} for {what!r}: "
                                       f"{data[:500].decode(errors='replace')}")
        partial = partial_reason(result[0] if isinstance(result, tuple) else result)
        if partial:  # retried as a 5xx: a federated store's missing shard may answer again
            raise _Retryable(partial)
        return result

    def _chunks(self, response: http.client.HTTPResponse, expired: threading.Event) -> Iterator[bytes]:
        """The body in chunks, refused past ``max_response_bytes``; a cut by the watchdog is an error."""
        length = response.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > self.max_response_bytes:
            raise TelemetrySourceError(self._too_big(int(length)))
        size = 0
        while True:
            chunk = response.read(_CHUNK)
            if expired.is_set():  # the watchdog cut the socket: what was read is a truncated answer
                raise OSError("deadline")
            if not chunk:
                return
            size += len(chunk)
            if size > self.max_response_bytes:
                raise TelemetrySourceError(self._too_big(size))
            yield chunk

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
