"""One HTTP(S) server for every wattfleet endpoint, with a route table.

The exporter (``/metrics`` and the probes), ``wattfleet serve`` (the same
plus ``/api/plan``) and the simulator (``/nodes/<name>/...``) all serve
through :class:`HttpServer`: TLS, basic auth, security headers and rate
limits come from one web config (the exporter-toolkit format,
:mod:`.webconfig`), and each part only says which paths it answers. Handlers
get a :class:`Request` and return a :class:`Response`; they never see sockets.

The server is built to stay up when clients misbehave (see :class:`_Server`):
idle connections wait in an event loop, not in threads; TLS handshakes run on
a bounded pool of workers under a deadline; every read has a timeout; open
connections are capped; and the listen backlog is deep enough for a
Prometheus restart that reconnects every scraper at once.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import errno
import io
import logging
import queue
import select
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, cast

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from wattfleet.core.basicauth import TooManyAttempts
from wattfleet.core.exposition import Snapshot
from wattfleet.core.webconfig import WebConfig

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
JSON = "application/json"


@dataclass(frozen=True)
class Request:
    """What a handler may look at: method, path (without query), raw query string, headers.

    ``client_gone()`` is true once the client has closed its side, so a costly
    handler can stop working for nobody.
    """

    method: str
    path: str
    query: str
    headers: Message
    client_gone: Callable[[], bool] = field(default=lambda: False, compare=False)
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = TEXT
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]

NOT_FOUND = Response(404, b"Not Found\n")
# Kubernetes probes cannot send credentials, and these answer only "alive" / "ready".
PROBE_PATHS = frozenset({"/-/healthy", "/-/ready"})
UNAUTHORIZED = Response(401, b"Unauthorized\n", headers={"WWW-Authenticate": 'Basic realm="wattfleet"'})
MAX_BODY_BYTES = 1 << 20
TOO_MANY = Response(429, b"Too Many Requests\n", headers={"Retry-After": "1"})


@dataclass
class Routes:
    """Exact paths first, then the longest matching prefix (``/nodes/`` style mounts)."""

    exact: dict[str, Handler] = field(default_factory=dict)
    prefixes: dict[str, Handler] = field(default_factory=dict)

    def resolve(self, path: str) -> Handler | None:
        handler = self.exact.get(path)
        if handler is not None:
            return handler
        for prefix in sorted(self.prefixes, key=len, reverse=True):
            if path.startswith(prefix):
                return self.prefixes[prefix]
        return None


@dataclass(frozen=True)
class Limits:
    """How much clients may hold: open connections, worker threads, seconds per step, pending accepts."""

    max_connections: int = 1024
    max_workers: int = 8
    handshake_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 10.0
    request_deadline_seconds: float = 30.0
    idle_timeout_seconds: float = 120.0
    backlog: int = 128


def parse_listen_address(address: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[v6]:port`` -> (host, port); an empty host means every address.

    Raises ValueError with a message fit for a usage error.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen address {address!r} must look like HOST:PORT, :PORT or [IPv6]:PORT")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"listen address {address!r}: unclosed '[' around the IPv6 address")
        host = host[1:-1]
        try:
            socket.inet_pton(socket.AF_INET6, host)
        except OSError:
            raise ValueError(f"listen address {address!r}: {host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError(f"listen address {address!r}: write an IPv6 address in brackets, e.g. [::1]:9880")
    return host, int(port)


def snapshot_routes(get_snapshot: Callable[[], Snapshot | None], title: str = "wattfleet exporter",
                    ready: Callable[[], tuple[bool, str]] | None = None) -> Routes:
    """``/metrics`` (gzip when accepted), ``/-/healthy``, ``/-/ready`` and a landing page for one snapshot.

    ``ready`` overrides readiness (the exporter reports a stale snapshot as not ready); by
    default a source is ready once it has a snapshot.
    """
    landing = (f"<html><head><title>{title}</title></head><body>\n"
               f"<h1>{title}</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n").encode()

    def metrics(request: Request) -> Response:
        snapshot = get_snapshot()
        if snapshot is None:
            return Response(503, b"no sample taken yet\n")
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return Response(200, snapshot.gzipped(), CONTENT_TYPE_LATEST, {"Content-Encoding": "gzip"})
        return Response(200, snapshot.body, CONTENT_TYPE_LATEST)

    def readiness(request: Request) -> Response:
        ok, why = ready() if ready is not None else (get_snapshot() is not None, "no sample taken yet")
        return Response(200, b"OK\n") if ok else Response(503, f"not ready: {why}\n".encode())

    return Routes(exact={
        "/metrics": metrics,
        "/-/healthy": lambda request: Response(200, b"OK\n"),
        "/-/ready": readiness,
        "/": lambda request: Response(200, landing, HTML),
    })


class _RateLimit:
    """The web config's ``rate_limit``: a token bucket over every request, 429 beyond it."""

    def __init__(self, interval_seconds: float, burst: int) -> None:
        self.interval, self.burst = interval_seconds, float(burst)
        self._tokens, self._at = float(burst), time.monotonic()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        if self.interval <= 0:
            return True
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) / self.interval)
            self._at = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True


def _handler_class(routes: Routes, web: WebConfig, limits: Limits) -> type[BaseHTTPRequestHandler]:
    rate = _RateLimit(web.rate_limit_interval_seconds, web.rate_limit_burst)

    class RequestHandler(BaseHTTPRequestHandler):
        server_version = "wattfleet"
        protocol_version = "HTTP/1.1"
        timeout = limits.read_timeout_seconds  # every read: an idle or dripping client is dropped

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for k, v in {**web.headers, **response.headers}.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        def _authorized(self) -> bool:
            if not web.users:
                return True
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return False
            try:
                user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return web.check_basic_auth(user, password)

        def _client_gone(self) -> bool:
            """True when the peer has closed its side (TCP FIN seen below any TLS layer)."""
            sock = self.connection
            try:
                readable, _, _ = select.select([sock], [], [], 0)
                # socket.socket.recv on the raw socket, also under TLS: peeks at TCP, consumes nothing.
                return bool(readable) and socket.socket.recv(sock, 1, socket.MSG_PEEK) == b""
            except (OSError, ValueError):
                return True

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            if not rate.allow():
                self._send(TOO_MANY)
                return
            path, _, query = self.path.partition("?")
            try:
                authorized = path in PROBE_PATHS or self._authorized()
            except TooManyAttempts:
                self._send(TOO_MANY)
                return
            if not authorized:
                self._send(UNAUTHORIZED)
                return
            handler = routes.resolve(path)
            if handler is None:
                self._send(NOT_FOUND)
                return
            body = b""
            if self.command == "POST":
                length = self.headers.get("Content-Length", "")
                if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                    self._send(Response(413 if length.isdigit() else 411, b"body missing or too large\n"))
                    self.close_connection = True
                    return
                body = self.rfile.read(int(length))
            self._send(handler(Request(self.command, path, query, self.headers, self._client_gone, body)))

        do_HEAD = do_GET
        do_POST = do_GET  # form posts (PromQL-style APIs); the body is read here, bounded

    return RequestHandler


class _Connection:
    """One client connection and its request handler, kept across keep-alive requests."""

    def __init__(self, sock: socket.socket, address: Any, handler: BaseHTTPRequestHandler | None = None) -> None:
        self.sock, self.address, self.handler = sock, address, handler
        self.deadline = 0.0


class _Server(HTTPServer):
    """An event loop for idle connections and a bounded pool of workers for busy ones.

    The loop thread only accepts and watches sockets: a connection that says
    nothing (an idle keep-alive, a stalled TLS client) costs a file
    descriptor and is closed at its idle deadline, never a thread. A worker
    takes a connection only when it has bytes to read, runs the TLS
    handshake (under a deadline) and one request at a time, then hands the
    connection back to the loop. So a few hundred idle clients cannot starve
    Prometheus' scrape, and threads stay at ``max_workers``.
    """

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily,
                 handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext | None,
                 web: WebConfig, limits: Limits) -> None:
        self.address_family = family
        self.request_queue_size = limits.backlog  # read by listen() inside super().__init__
        self.context, self.web, self.limits = context, web, limits
        self._handler_cls = handler
        self._pool = ThreadPoolExecutor(max_workers=limits.max_workers, thread_name_prefix="wattfleet-http")
        self._selector = selectors.DefaultSelector()
        self._idle: dict[int, _Connection] = {}
        self._returned: queue.SimpleQueue[_Connection] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._loop_started = False
        self._open = 0
        self._open_lock = threading.Lock()
        self._busy: dict[int, tuple[_Connection, float]] = {}
        self._busy_lock = threading.Lock()
        self.refused_connections = 0
        super().__init__(address, handler, bind_and_activate=False)
        if family == socket.AF_INET6:
            # "[::]:port" and ":port" serve IPv4 too (dual stack), as Go's listeners do.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            self.server_bind()
            self.server_activate()
        except BaseException:
            self.server_close()
            raise

    # --- the loop thread -----------------------------------------------------------------------
    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._loop_started = True
        self.socket.setblocking(False)
        self._selector.register(self.socket, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stop.is_set():
                for key, _ in self._selector.select(timeout=min(poll_interval, 1.0)):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        self._wake_r.recv(4096)
                    else:
                        self._selector.unregister(key.fileobj)
                        conn = self._idle.pop(key.fd)
                        self._pool.submit(self._work, conn)
                self._park_returned()
                self._expire_idle()
        finally:
            self._stopped.set()

    def _accept(self) -> None:
        while True:
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: log, keep serving the connections we have
                log.warning("accept failed: %s", exc)
                return
            with self._open_lock:
                full = self._open >= self.limits.max_connections
                if not full:
                    self._open += 1
            if full:
                self.refused_connections += 1
                log.warning("refusing a connection from %s: %d connections open",
                            address[0], self.limits.max_connections)
                sock.close()
                continue
            sock.setblocking(True)
            self._watch(_Connection(sock, address), self.limits.handshake_timeout_seconds
                        if self.context is not None else self.limits.read_timeout_seconds)

    def _watch(self, conn: _Connection, idle_seconds: float) -> None:
        conn.deadline = time.monotonic() + idle_seconds
        self._idle[conn.sock.fileno()] = conn
        self._selector.register(conn.sock, selectors.EVENT_READ, "conn")

    def _park_returned(self) -> None:
        while True:
            try:
                conn = self._returned.get_nowait()
            except queue.Empty:
                return
            self._watch(conn, self.limits.idle_timeout_seconds)

    def _expire_idle(self) -> None:
        """Close idle connections past their deadline; cut requests that outlive theirs."""
        now = time.monotonic()
        with self._busy_lock:
            late = [conn for conn, deadline in self._busy.values() if deadline <= now]
        for conn in late:  # a client dripping bytes: end the blocked read, the worker then closes it
            log.warning("cutting a request from %s that took longer than %.0f s",
                        conn.address[0], self.limits.request_deadline_seconds)
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for fd, conn in list(self._idle.items()):
            if conn.deadline <= now:
                self._selector.unregister(conn.sock)
                del self._idle[fd]
                self._close(conn)

    # --- workers ---------------------------------------------------------------------------------
    def _work(self, conn: _Connection) -> None:
        with self._busy_lock:
            self._busy[id(conn)] = (conn, time.monotonic() + self.limits.request_deadline_seconds)
        try:
            parked = self._serve(conn)
        except (OSError, ssl.SSLError) as exc:  # timeouts, resets, failed handshakes, the watchdog
            log.debug("connection from %s ended: %s", conn.address[0], exc)
            parked = False
        except Exception:
            log.exception("request from %s failed", conn.address[0])
            parked = False
        finally:
            with self._busy_lock:
                self._busy.pop(id(conn), None)
        if parked:
            self._returned.put(conn)  # back to the loop until its next bytes arrive
            self._wake_w.send(b"x")
        else:
            self._close(conn)

    def _serve(self, conn: _Connection) -> bool:
        """Handshake if new, then requests while bytes are waiting; True to park the connection."""
        if conn.handler is None:
            if self.context is not None:
                conn.sock.settimeout(self.limits.handshake_timeout_seconds)
                conn.sock = self.context.wrap_socket(conn.sock, server_side=True)
                if not self.web.client_allowed(conn.sock.getpeercert()):
                    log.warning("refusing %s: client certificate has none of the allowed SANs", conn.address[0])
                    return False
            conn.sock.settimeout(self.limits.read_timeout_seconds)
            # One handler object per connection, kept across its keep-alive requests (see _Connection),
            # so it is built without __init__, which would serve the whole connection in one go.
            handler = self._handler_cls.__new__(self._handler_cls)
            handler.request, handler.client_address, handler.server = conn.sock, conn.address, self
            handler.setup()
            conn.handler = handler
        handler = conn.handler
        while self._ready(conn):
            handler.close_connection = True
            handler.handle_one_request()
            if handler.close_connection:
                return False
        return True

    def _ready(self, conn: _Connection) -> bool:
        """True when the next request's bytes (or the client's EOF) are here; else the worker parks it."""
        assert conn.handler is not None
        if isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending():
            return True
        conn.sock.setblocking(False)
        try:
            if cast(io.BufferedReader, conn.handler.rfile).peek(1):  # already buffered, or one non-blocking read
                return True
            # socket.socket.recv on the raw socket, also under TLS: b"" is EOF, which the handler must see
            socket.socket.recv(conn.sock, 1, socket.MSG_PEEK)
            return True
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        finally:
            conn.sock.settimeout(self.limits.read_timeout_seconds)

    def _close(self, conn: _Connection) -> None:
        try:
            if conn.handler is not None:
                conn.handler.finish()
        except OSError:
            pass
        self.shutdown_request(conn.sock)
        with self._open_lock:
            self._open -= 1

    # --- life cycle -------------------------------------------------------------------------------
    def shutdown(self) -> None:
        self._stop.set()
        self._wake_w.send(b"x")
        if self._loop_started:
            self._stopped.wait(5)

    def server_close(self) -> None:
        super().server_close()
        for conn in list(self._idle.values()):
            self.shutdown_request(conn.sock)
        self._idle.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


def _family_and_host(host: str) -> tuple[socket.AddressFamily, str]:
    if host == "":
        return (socket.AF_INET6, "::") if socket.has_ipv6 and _ipv6_works() else (socket.AF_INET, "0.0.0.0")
    if ":" in host:
        return socket.AF_INET6, host
    return socket.AF_INET, host


def _ipv6_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::", 0))
        return True
    except OSError as exc:
        if exc.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT):
            return False
        raise


class HttpServer:
    """An HTTP(S) server bound to ``address`` answering ``routes``; ``port`` is the bound port."""

    def __init__(self, address: str, routes: Routes, web: WebConfig | None = None, backlog: int | None = None,
                 limits: Limits | None = None) -> None:
        web = web or WebConfig()
        limits = limits or Limits()
        if backlog is not None:
            limits = dataclasses.replace(limits, backlog=backlog)
        host, port = parse_listen_address(address)
        family, bind_host = _family_and_host(host)
        self.routes = routes
        self.httpd = _Server((bind_host, port), family, _handler_class(routes, web, limits), web.ssl_context(),
                             web, limits)
        self.scheme = "https" if web.tls else "http"
        self.host, self.port = host, self.httpd.server_address[1]
        self._thread: threading.Thread | None = None
        self._stopped = False

    def url_for(self, path: str) -> str:
        if self.host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in self.host:
            host = f"[{self.host}]"
        else:
            host = self.host
        return f"{self.scheme}://{host}:{self.port}{path}"

    @property
    def url(self) -> str:
        return self.url_for("/metrics")

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="wattfleet-http-accept", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close every connection; calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        self.httpd.shutdown()
        self.httpd.server_close()


class MetricsServer(HttpServer):
    """An :class:`HttpServer` answering :func:`snapshot_routes` for one snapshot source."""

    def __init__(self, address: str, get_snapshot: Callable[[], Snapshot | None],
                 web: WebConfig | None = None, title: str = "wattfleet exporter",
                 ready: Callable[[], tuple[bool, str]] | None = None, limits: Limits | None = None) -> None:
        super().__init__(address, snapshot_routes(get_snapshot, title, ready), web, limits=limits)
