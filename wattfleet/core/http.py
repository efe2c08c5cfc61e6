"""One HTTP(S) server for every wattfleet endpoint, with a route table.

The exporter (``/metrics`` and the probes), ``wattfleet serve`` (the same
plus ``/api/plan``) and the simulator (``/nodes/<name>/...``) all serve
through :class:`HttpServer`: TLS and basic auth come from one web config
(the exporter-toolkit format, :mod:`.webconfig`), and each part only says
which paths it answers. Handlers get a :class:`Request` and return a
:class:`Response`; they never see sockets.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from wattfleet.core.exposition import Snapshot
from wattfleet.core.webconfig import WebConfig

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
JSON = "application/json"


@dataclass(frozen=True)
class Request:
    """What a handler may look at: method, path (without query), raw query string, headers."""

    method: str
    path: str
    query: str
    headers: Message


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = TEXT
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]

NOT_FOUND = Response(404, b"Not Found\n")
UNAUTHORIZED = Response(401, b"Unauthorized\n", headers={"WWW-Authenticate": 'Basic realm="wattfleet"'})


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


def parse_listen_address(address: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[v6]:port`` -> (host, port); empty host binds all."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {address!r} must look like HOST:PORT or :PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def snapshot_routes(get_snapshot: Callable[[], Snapshot | None], title: str = "wattfleet exporter") -> Routes:
    """``/metrics`` (gzip when accepted), ``/-/healthy``, ``/-/ready`` and a landing page for one snapshot."""
    landing = (f"<html><head><title>{title}</title></head><body>\n"
               f"<h1>{title}</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n").encode()

    def metrics(request: Request) -> Response:
        snapshot = get_snapshot()
        if snapshot is None:
            return Response(503, b"no sample taken yet\n")
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return Response(200, snapshot.gzipped(), CONTENT_TYPE_LATEST, {"Content-Encoding": "gzip"})
        return Response(200, snapshot.body, CONTENT_TYPE_LATEST)

    def ready(request: Request) -> Response:
        return Response(200, b"OK\n") if get_snapshot() is not None else Response(503, b"not ready\n")

    return Routes(exact={
        "/metrics": metrics,
        "/-/healthy": lambda request: Response(200, b"OK\n"),
        "/-/ready": ready,
        "/": lambda request: Response(200, landing, HTML),
    })


def _handler_class(routes: Routes, web: WebConfig) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        server_version = "wattfleet"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for k, v in response.headers.items():
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
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return web.check_basic_auth(user, password)

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            if not self._authorized():
                self._send(UNAUTHORIZED)
                return
            path, _, query = self.path.partition("?")
            handler = routes.resolve(path)
            if handler is None:
                self._send(NOT_FOUND)
                return
            self._send(handler(Request(self.command, path, query, self.headers)))

        do_HEAD = do_GET

    return RequestHandler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], backlog: int) -> None:
        self.request_queue_size = backlog  # read by listen() inside super().__init__
        super().__init__(address, handler)


class HttpServer:
    """A threaded HTTP(S) server bound to ``address`` answering ``routes``; ``port`` is the bound port."""

    def __init__(self, address: str, routes: Routes, web: WebConfig | None = None, backlog: int = 128) -> None:
        """``backlog``: pending connections the kernel queues (a Prometheus restart reconnects every scraper)."""
        web = web or WebConfig()
        host, port = parse_listen_address(address)
        self.routes = routes
        self.httpd = _Server((host, port), _handler_class(routes, web), backlog)
        context = web.ssl_context()
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if context is not None else "http"
        self.host, self.port = host, self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    def url_for(self, path: str) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{self.scheme}://{host}:{self.port}{path}"

    @property
    def url(self) -> str:
        return self.url_for("/metrics")

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="wattfleet-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class MetricsServer(HttpServer):
    """An :class:`HttpServer` answering :func:`snapshot_routes` for one snapshot source."""

    def __init__(self, address: str, get_snapshot: Callable[[], Snapshot | None],
                 web: WebConfig | None = None, title: str = "wattfleet exporter") -> None:
        super().__init__(address, snapshot_routes(get_snapshot, title), web)
