"""One HTTP(S) server for every wattfleet endpoint, with a route table.

The exporter (``/metrics`` and the probes), ``wattfleet serve`` (the same
plus ``/api/plan``) and the simulator (``/nodes/<name>/...``) all serve
through :class:`HttpServer`: TLS, basic auth, security headers and rate
limits come from one web config (the exporter-toolkit format,
:mod:`.webconfig`); paths and handlers from :mod:`.routes`; connection
handling (event loop, bounded workers, deadlines) from :mod:`.serving`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import select
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from wattfleet.core.basicauth import TooManyAttempts
from wattfleet.core.exposition import Snapshot
from wattfleet.core.routes import (
    MAX_BODY_BYTES,
    NOT_FOUND,
    PROBE_PATHS,
    TOO_MANY,
    UNAUTHORIZED,
    Request,
    Response,
    Routes,
    snapshot_routes,
)
from wattfleet.core.serving import ConnectionServer, Limits, family_and_host
from wattfleet.core.tokenbucket import TokenBucket
from wattfleet.core.webconfig import WebConfig

log = logging.getLogger(__name__)


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



def _handler_class(routes: Routes, web: WebConfig, limits: Limits) -> type[BaseHTTPRequestHandler]:
    # the web config's rate_limit: one request per interval on average, `burst` at once; 0 = no limit
    interval = web.rate_limit_interval_seconds
    rate = TokenBucket(1.0 / interval, web.rate_limit_burst) if interval > 0 else None

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
            if rate is not None and not rate.take():
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



class HttpServer:
    """An HTTP(S) server bound to ``address`` answering ``routes``; ``port`` is the bound port."""

    def __init__(self, address: str, routes: Routes, web: WebConfig | None = None, backlog: int | None = None,
                 limits: Limits | None = None) -> None:
        web = web or WebConfig()
        limits = limits or Limits()
        if backlog is not None:
            limits = dataclasses.replace(limits, backlog=backlog)
        host, port = parse_listen_address(address)
        family, bind_host = family_and_host(host)
        self.routes = routes
        self.httpd = ConnectionServer((bind_host, port), family, _handler_class(routes, web, limits), web.ssl_context(),
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
