"""The shared HTTP server under hostile clients: idle, dripping and TLS-silent connections, floods, IPv6.

Every test talks to a real server over real sockets on the loopback interface.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tls_fixtures import self_signed

from wattfleet.core.exposition import Snapshot
from wattfleet.core.http import HttpServer, MetricsServer, parse_listen_address
from wattfleet.core.routes import Request, Response, Routes
from wattfleet.core.serving import Limits
from wattfleet.core.webconfig import WebConfig, load_web_config

BODY = b"# HELP x_total x\n# TYPE x_total counter\nx_total 1.0\n"


def snapshot() -> Snapshot:
    return Snapshot(BODY, time.time())


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    s = MetricsServer("127.0.0.1:0", snapshot, limits=Limits(idle_timeout_seconds=1.0, read_timeout_seconds=1.0,
                                                              handshake_timeout_seconds=1.0))
    s.start()
    yield s
    s.stop()


def get(url: str, context: ssl.SSLContext | None = None, timeout: float = 3.0) -> bytes:
    import urllib.request
    return urllib.request.urlopen(url, timeout=timeout, context=context).read()


def idle(port: int, n: int, host: str = "127.0.0.1") -> list[socket.socket]:
    return [socket.create_connection((host, port), timeout=5) for _ in range(n)]


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_a_silent_tls_client_does_not_block_scrapes(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    (tmp_path / "web.yml").write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    s = MetricsServer("127.0.0.1:0", snapshot, load_web_config(tmp_path / "web.yml"))
    s.start()
    try:
        silent = idle(s.port, 3)  # connect and never start the handshake
        ctx = ssl.create_default_context(cafile=str(cert))
        started = time.monotonic()
        for _ in range(5):
            assert get(s.url, ctx) == BODY
        assert time.monotonic() - started < 2.0
        for sock in silent:
            sock.close()
    finally:
        s.stop()


def test_hundreds_of_idle_connections_hold_no_threads_and_expire(server: MetricsServer) -> None:
    before = threading.active_count()
    conns = idle(server.port, 300)
    time.sleep(0.3)
    assert get(server.url) == BODY  # served while 300 connections sit idle
    assert threading.active_count() - before <= Limits().max_workers
    # the idle deadline (1 s here) closes every one of them
    assert all(closed_by_server(c, within=4.0) for c in conns)
    for c in conns:
        c.close()


def test_connections_beyond_the_cap_are_refused_at_once() -> None:
    s = MetricsServer("127.0.0.1:0", snapshot, limits=Limits(max_connections=5))
    s.start()
    try:
        held = idle(s.port, 5)
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        assert closed_by_server(extra, within=2.0)
        assert s.httpd.refused_connections >= 1
        for c in held:
            c.close()
        time.sleep(0.3)
        assert get(s.url) == BODY  # slots come back when clients leave
    finally:
        s.stop()


def test_a_dripping_client_is_cut_at_the_request_deadline() -> None:
    s = MetricsServer("127.0.0.1:0", snapshot, limits=Limits(request_deadline_seconds=1.0, read_timeout_seconds=5.0))
    s.start()
    try:
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        cut = False
        while time.monotonic() - started < 6.0:
            try:
                sock.sendall(b"X-Drip: 1\r\n")  # one header line every 0.2 s: each read succeeds
            except OSError:
                cut = True
                break
            if closed_by_server(sock, within=0.2):
                cut = True
                break
        assert cut and time.monotonic() - started < 4.0
        assert get(s.url) == BODY
    finally:
        s.stop()


def test_keep_alive_serves_several_requests_on_one_connection(server: MetricsServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for _ in range(3):
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == BODY
        time.sleep(0.05)
    conn.close()


def test_listen_backlog_is_deep() -> None:
    s = HttpServer("127.0.0.1:0", Routes())
    try:
        assert s.httpd.request_queue_size >= 128
    finally:
        s.httpd.server_close()


def _ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6(), reason="no IPv6 loopback on this machine")
def test_ipv6_and_dual_stack_addresses() -> None:
    v6 = MetricsServer("[::1]:0", snapshot)
    v6.start()
    try:
        assert v6.url.startswith("http://[::1]:")
        assert get(v6.url) == BODY
    finally:
        v6.stop()
    both = MetricsServer(":0", snapshot)
    both.start()
    try:
        assert get(f"http://127.0.0.1:{both.port}/metrics") == BODY
        assert get(f"http://[::1]:{both.port}/metrics") == BODY
    finally:
        both.stop()


@pytest.mark.parametrize("address, message", [
    ("9880", "must look like HOST:PORT"),
    ("host:http", "must look like HOST:PORT"),
    (":99999", "must look like HOST:PORT"),
    ("[::1:9880", "unclosed"),
    ("[nope]:9880", "not an IPv6 address"),
    ("::1:9880", "in brackets"),
])
def test_bad_listen_addresses_say_why(address: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_listen_address(address)


def test_rate_limit_and_security_headers_from_the_web_config(tmp_path: Path) -> None:
    (tmp_path / "web.yml").write_text("rate_limit: {interval: 1s, burst: 2}\n"
                                      "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
                                      "    X-Content-Type-Options: nosniff\n")
    s = MetricsServer("127.0.0.1:0", snapshot, load_web_config(tmp_path / "web.yml"))
    s.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
        statuses = []
        for _ in range(4):
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            r.read()
            statuses.append(r.status)
            if r.status == 200:
                assert r.headers["X-Frame-Options"] == "deny" and r.headers["X-Content-Type-Options"] == "nosniff"
        assert statuses[:2] == [200, 200] and 429 in statuses[2:]
    finally:
        s.stop()


def test_a_handler_sees_the_client_leave() -> None:
    stopped = threading.Event()

    def slow(request: Request) -> Response:
        for _ in range(100):
            if request.client_gone():
                stopped.set()
                break
            time.sleep(0.05)
        return Response(200, b"done\n")

    s = HttpServer("127.0.0.1:0", Routes(exact={"/slow": slow}))
    s.start()
    try:
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        sock.close()
        assert stopped.wait(3.0)
    finally:
        s.stop()


def test_default_web_config_is_plain_http() -> None:
    assert WebConfig().ssl_context() is None
