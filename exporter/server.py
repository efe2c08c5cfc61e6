"""HTTP(S) endpoint serving the sampler's last snapshot.

``/metrics`` copies pre-rendered bytes (gzip when the scraper accepts it);
``/-/healthy`` and ``/-/ready`` serve Kubernetes probes; TLS and basic auth
come from the web config file. Nothing here reads hardware.
"""

from __future__ import annotations

import base64
import binascii
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .sampler import Snapshot
from .webconfig import WebConfig

log = logging.getLogger(__name__)

LANDING = b"""<html><head><title>wattfleet exporter</title></head><body>
<h1>wattfleet exporter</h1><p><a href="/metrics">Metrics</a></p></body></html>
"""


def parse_listen_address(address: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[v6]:port`` -> (host, port); empty host binds all."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {address!r} must look like HOST:PORT or :PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def make_handler(get_snapshot: Callable[[], Snapshot | None], web: WebConfig) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "wattfleet"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _authorized(self) -> bool:
            if not web.users:
                return True
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                try:
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    return False
                return web.check_basic_auth(user, password)
            return False

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            if not self._authorized():
                self._send(401, b"Unauthorized\n", headers={"WWW-Authenticate": 'Basic realm="wattfleet"'})
                return
            path = self.path.split("?", 1)[0]
            snapshot = get_snapshot()
            if path == "/metrics":
                if snapshot is None:
                    self._send(503, b"no sample taken yet\n")
                elif "gzip" in self.headers.get("Accept-Encoding", ""):
                    self._send(200, snapshot.gzipped(), CONTENT_TYPE_LATEST, {"Content-Encoding": "gzip"})
                else:
                    self._send(200, snapshot.body, CONTENT_TYPE_LATEST)
            elif path == "/-/healthy":
                self._send(200, b"OK\n")
            elif path == "/-/ready":
                self._send(200 if snapshot is not None else 503, b"OK\n" if snapshot else b"not ready\n")
            elif path == "/":
                self._send(200, LANDING, "text/html; charset=utf-8")
            else:
                self._send(404, b"Not Found\n")

        do_HEAD = do_GET

    return Handler


class MetricsServer:
    """A threaded HTTP(S) server bound to ``address``; ``port`` is the bound port."""

    def __init__(self, address: str, get_snapshot: Callable[[], Snapshot | None],
                 web: WebConfig | None = None) -> None:
        web = web or WebConfig()
        host, port = parse_listen_address(address)
        self.httpd = ThreadingHTTPServer((host, port), make_handler(get_snapshot, web))
        self.httpd.daemon_threads = True
        context = web.ssl_context()
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if context is not None else "http"
        self.host, self.port = host, self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{self.scheme}://{host}:{self.port}/metrics"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="wattfleet-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for_stop_signal(timeout: float | None = None) -> None:
    """Block until SIGTERM or SIGINT (or ``timeout`` seconds): every daemon's shutdown path.

    Kubernetes stops pods with SIGTERM, a terminal with SIGINT; both must let
    the caller stop its servers and threads cleanly instead of dying mid-write.
    """
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait(timeout)
