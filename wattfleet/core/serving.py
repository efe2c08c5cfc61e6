"""Serving connections: an event loop for idle ones and a bounded pool of workers for busy ones.

Built to stay up when clients misbehave: idle connections wait in a selector,
not in threads; TLS handshakes run on the workers under a deadline; every
read has a timeout and every request an overall deadline (a watchdog cuts
dripping clients); open connections are capped and refused at once beyond
the cap; the listen backlog is deep enough for a Prometheus restart that
reconnects every scraper at once. :mod:`.http` builds on this.
"""

from __future__ import annotations

import errno
import io
import logging
import queue
import selectors
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, cast

from wattfleet.core.webconfig import WebConfig

log = logging.getLogger(__name__)


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



class _Connection:
    """One client connection and its request handler, kept across keep-alive requests."""

    def __init__(self, sock: socket.socket, address: Any, handler: BaseHTTPRequestHandler | None = None) -> None:
        self.sock, self.address, self.handler = sock, address, handler
        self.deadline = 0.0


class ConnectionServer(HTTPServer):
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


def family_and_host(host: str) -> tuple[socket.AddressFamily, str]:
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
