"""The store client against hostile or demanding stores: drips, floods, auth, TLS, tenants, retries, +Inf.

The misbehaving stores are small servers on 127.0.0.1 built on wattfleet's own HTTP server (for TLS and
basic auth) or raw sockets (for drips); the non-finite value goes through a real Prometheus.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import bcrypt
import pytest
from tls_fixtures import client_ca, client_cert, self_signed

from fixtures.agg.backfill import History, Series, whole_hours_ago
from fixtures.agg.e2e import H0, HOURS, history
from fixtures.agg.vmserver import VictoriaMetricsServer, have_victoria_metrics
from promserver import PROMTOOL, PrometheusServer, have_prometheus
from wattfleet.aggregator.ingest.prometheus import PrometheusSource
from wattfleet.aggregator.ingest.store_client import StoreAuth, StoreClient
from wattfleet.aggregator.ingest.telemetry import TelemetrySourceError
from wattfleet.core import catalog
from wattfleet.core.http import HttpServer
from wattfleet.core.routes import JSON, Request, Response, Routes
from wattfleet.core.webconfig import load_web_config

OK = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}}).encode()


class Recorder:
    """Routes answering /api/v1/query_range with ``answers`` in turn and recording the headers seen."""

    def __init__(self, *answers: Response) -> None:
        self.answers = list(answers) or [Response(200, OK, JSON)]
        self.headers: list[dict[str, str]] = []
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Response:
        self.headers.append(dict(request.headers.items()))
        self.requests.append(request)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def routes(self) -> Routes:
        return Routes(exact={"/api/v1/query_range": self, "/api/v1/label/node/values": self},
                      prefixes={"/prefix/api/v1/query_range": self})


@pytest.fixture
def recorder_server() -> Iterator[tuple[Recorder, HttpServer]]:
    rec = Recorder()
    server = HttpServer("127.0.0.1:0", rec.routes())
    server.start()
    yield rec, server
    server.stop()


def _post(client: StoreClient) -> object:
    return client.post("query_range", {"query": "up"})


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
    # http.client hands a `Connection: close` answer's socket to the response and forgets it
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
], ids=["keep-alive", "connection-close"])
def test_a_dripping_store_cannot_hold_the_run(head: bytes) -> None:
    """Headers, then a byte every 0.3 s: each read succeeds, the whole-request deadline still ends it."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(head)
        while not stop.is_set():
            try:
                conn.sendall(b" ")
            except OSError:
                break
            time.sleep(0.3)
        conn.close()

    threading.Thread(target=drip, daemon=True).start()
    client = StoreClient(f"http://127.0.0.1:{listener.getsockname()[1]}", deadline_seconds=1.5, retries=0)
    started = time.monotonic()
    with pytest.raises(TelemetrySourceError, match="no complete answer within 1.5 s"):
        _post(client)
    assert time.monotonic() - started < 4.0
    stop.set()
    listener.close()


def test_an_oversized_answer_is_refused_while_read(recorder_server: tuple[Recorder, HttpServer]) -> None:
    rec, server = recorder_server
    rec.answers = [Response(200, b" " * (8 << 20) + OK, JSON)]   # 8 MiB of padding before the JSON
    client = StoreClient(f"http://127.0.0.1:{server.port}", max_response_bytes=1 << 20, retries=0)
    with pytest.raises(TelemetrySourceError, match="answer larger than 1 MiB.*--page-hours"):
        _post(client)


def test_429_and_5xx_are_retried_4xx_are_not(recorder_server: tuple[Recorder, HttpServer]) -> None:
    rec, server = recorder_server
    rec.answers = [Response(429, b"slow down"), Response(503, b"busy"), Response(200, OK, JSON)]
    client = StoreClient(f"http://127.0.0.1:{server.port}", retries=3, backoff_seconds=0.01)
    assert _post(client) == {"resultType": "matrix", "result": []}
    assert client.requests_made == 3
    rec.answers = [Response(400, b"bad query")]
    client = StoreClient(f"http://127.0.0.1:{server.port}", retries=3, backoff_seconds=0.01)
    with pytest.raises(TelemetrySourceError, match="HTTP 400"):
        _post(client)
    assert client.requests_made == 1


def test_bearer_token_file_tenant_and_headers_are_sent(recorder_server: tuple[Recorder, HttpServer],
                                                      tmp_path: Path) -> None:
    rec, server = recorder_server
    token = tmp_path / "token"
    token.write_text("s3cr3t\n")
    auth = StoreAuth(bearer_token_file=str(token), tenant="team-a", headers={"AccountID": "7"})
    client = StoreClient(f"http://127.0.0.1:{server.port}/prefix", auth)
    _post(client)
    token.write_text("rotated\n")                                  # re-read per request
    _post(client)
    first, second = rec.headers
    assert first["Authorization"] == "Bearer s3cr3t" and second["Authorization"] == "Bearer rotated"
    assert first["X-Scope-OrgID"] == "team-a" and first["AccountID"] == "7"


def test_tls_with_a_private_ca_client_certificate_and_basic_auth(tmp_path: Path) -> None:
    """The store requires TLS with client certificates and basic auth, as a proxy in front of Mimir would."""
    cert, key = self_signed(tmp_path)
    ca = client_ca(tmp_path)
    client_pair = client_cert(tmp_path, ca, "aggregator", "DNS:aggregator")
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "web.yml").write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca[0]}\n"
        f"basic_auth_users:\n  reader: '{hashed}'\n")
    rec = Recorder()
    server = HttpServer("127.0.0.1:0", rec.routes(), load_web_config(tmp_path / "web.yml"))
    server.start()
    try:
        url = f"https://127.0.0.1:{server.port}"
        good = StoreAuth(basic_auth=("reader", "pw"), ca_file=str(cert), cert_file=str(client_pair[0]),
                         key_file=str(client_pair[1]))
        assert _post(StoreClient(url, good)) == {"resultType": "matrix", "result": []}
        with pytest.raises(TelemetrySourceError, match="HTTP 401"):
            _post(StoreClient(url, StoreAuth(basic_auth=("reader", "wrong"), ca_file=str(cert),
                                             cert_file=str(client_pair[0]), key_file=str(client_pair[1]))))
        with pytest.raises(TelemetrySourceError, match="no usable answer"):   # no client certificate
            _post(StoreClient(url, StoreAuth(basic_auth=("reader", "pw"), ca_file=str(cert)), retries=0))
    finally:
        server.stop()


@pytest.mark.prometheus
@pytest.mark.skipif(not have_prometheus(), reason="prometheus is not installed")
def test_a_non_finite_increase_stops_the_window_and_names_series_hour_and_store() -> None:
    h0 = whole_hours_ago(4)
    labels = dict(node="n1", cluster="c", site="s", gpu="0", uuid="GPU-x", gpu_model="H100", method="measured",
                  source="nvml")
    history = History(h0, 2, [Series(catalog.GPU_ENERGY, labels, 300)])
    text = history.openmetrics().replace("# EOF\n", "")
    bad_t = int((h0 + timedelta(minutes=90)).timestamp())
    lines = [ln for ln in text.splitlines() if not ln.endswith(f" {bad_t}")]
    label_text = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    lines.append(f"{catalog.GPU_ENERGY.series}{{{label_text}}} +Inf {bad_t}")
    lines.sort(key=lambda ln: int(ln.rsplit(" ", 1)[1]) if not ln.startswith("#") else -1)
    server = PrometheusServer(targets=[])
    src = server.dir / "bad.om"
    src.write_text("\n".join(lines) + "\n# EOF\n")
    (server.dir / "data").mkdir(parents=True, exist_ok=True)
    subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(src), str(server.dir / "data")],
                   check=True, capture_output=True, timeout=120)
    with server:
        server.wait_for(catalog.GPU_ENERGY.series + "[10d]", timeout=30)
        source = PrometheusSource(server.url, retries=0)
        start = h0.astimezone(timezone.utc).replace(tzinfo=None)
        with pytest.raises(TelemetrySourceError) as err:
            source.fetch(start, start + timedelta(hours=2))
    message = str(err.value)
    assert 'node="n1"' in message and 'gpu="0"' in message and server.url in message
    assert "hour " in message
    assert "not a finite non-negative amount; nothing written for this window" in message


def test_now_is_timezone_aware() -> None:
    assert datetime.now(timezone.utc).tzinfo is not None


class _Sink:
    """Counts the series of one answer, from either reader (``add_decoded``: the whole-answer decoder's)."""

    def __init__(self) -> None:
        self.series = 0

    def add(self, metric: dict[str, str], values: list[list[object]]) -> None:
        self.series += 1

    def add_decoded(self, series: list[object]) -> bool:
        self.series += len(series)
        return True

    def done(self) -> None:
        pass


def _matrix(**top: object) -> bytes:
    """A matrix answer of one series with extra top-level keys, as VictoriaMetrics and Thanos add them."""
    result = [{"metric": {"node": "n1"}, "values": [[1700000000, "1.5"]]}]
    return json.dumps({"status": "success", **top, "data": {"resultType": "matrix", "result": result}}).encode()


@pytest.mark.parametrize("whole_answer_bytes", [8 << 20, 0])  # decoded whole (msgspec), and streamed
@pytest.mark.parametrize("partial", [{"isPartial": True}, {"warnings": ["store 10.0.0.7:10901 unavailable"]}])
def test_a_partial_answer_is_retried_as_a_5xx_and_fails_if_it_stays_partial(
        recorder_server: tuple[Recorder, HttpServer], whole_answer_bytes: int, partial: dict[str, object]) -> None:
    """VictoriaMetrics' ``isPartial`` and a Thanos partial response's ``warnings`` never pass as the answer:
    stored hours would be replaced with less than the store holds."""
    rec, server = recorder_server
    url = f"http://127.0.0.1:{server.port}"
    rec.answers = [Response(200, _matrix(**partial), JSON), Response(200, _matrix(isPartial=False), JSON)]
    client = StoreClient(url, retries=2, backoff_seconds=0.01, whole_answer_bytes=whole_answer_bytes)
    assert client.stream_matrix("query_range", {"query": "up"}, _Sink).series == 1
    assert client.requests_made == 2
    rec.answers = [Response(200, _matrix(**partial), JSON)]
    client = StoreClient(url, retries=2, backoff_seconds=0.01, whole_answer_bytes=whole_answer_bytes)
    with pytest.raises(TelemetrySourceError, match="after 3 attempts: the store.*(isPartial|10.0.0.7:10901)"):
        client.stream_matrix("query_range", {"query": "up"}, _Sink)
    with pytest.raises(TelemetrySourceError, match="partial"):
        _post(client)
    # Prometheus' own query annotations are not missing data
    rec.answers = [Response(200, _matrix(warnings=["PromQL info: metric might not be a counter"]), JSON)]
    client = StoreClient(url, retries=2, backoff_seconds=0.01, whole_answer_bytes=whole_answer_bytes)
    assert client.stream_matrix("query_range", {"query": "up"}, _Sink).series == 1
    assert client.requests_made == 1


def test_every_request_asks_thanos_and_victoriametrics_cluster_for_no_partial_response(
        recorder_server: tuple[Recorder, HttpServer]) -> None:
    """``partial_response=false`` (Thanos querier and query-frontend) and ``deny_partial_response=1``
    (VictoriaMetrics cluster) ride along with the query's own parameters, in a POST form and a GET query."""
    rec, server = recorder_server
    client = StoreClient(f"http://127.0.0.1:{server.port}")
    client.post("query_range", {"query": "up", "step": "3600"})
    rec.answers = [Response(200, b'{"status":"success","data":["n1"]}', JSON)]
    assert client.get("label/node/values", [("match[]", "up"), ("match[]", "down")]) == ["n1"]
    post, get = rec.requests
    assert post.method == "POST" and get.method == "GET"
    assert urllib.parse.parse_qsl(post.body.decode()) == [("query", "up"), ("step", "3600"),
                                                          ("partial_response", "false"), ("deny_partial_response", "1")]
    assert urllib.parse.parse_qsl(get.query) == [("match[]", "up"), ("match[]", "down"),
                                                 ("partial_response", "false"), ("deny_partial_response", "1")]


def _bare_get(url: str, path: str, params: list[tuple[str, str]]) -> object:
    with urllib.request.urlopen(f"{url}/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=10) as r:
        return json.load(r)["data"]


@pytest.mark.prometheus
@pytest.mark.parametrize("store", ["prometheus", "victoriametrics"])
def test_prometheus_and_victoriametrics_answer_as_without_the_no_partial_parameters(store: str) -> None:
    """The real servers ignore what only Thanos and a VictoriaMetrics cluster read: the client's answers,
    parameters included, equal bare requests without them (series listing and a range query)."""
    if store == "prometheus":
        if not have_prometheus():
            pytest.skip("prometheus is not installed")
        server: PrometheusServer | VictoriaMetricsServer = PrometheusServer(targets=[])
        history().write_blocks(PROMTOOL, server.dir / "data")
    else:
        if not have_victoria_metrics():
            pytest.skip("victoria-metrics not installed")
        server = VictoriaMetricsServer()
    with server:
        if isinstance(server, VictoriaMetricsServer):
            server.import_openmetrics(history().openmetrics())
        client = StoreClient(server.url, retries=0)
        nodes = [("match[]", catalog.GPU_ENERGY.series)]
        end = (H0 + timedelta(hours=HOURS)).timestamp()
        query = [("query", f"max by (node, gpu) (increase({catalog.GPU_ENERGY.series}[1h]))"),
                 ("start", f"{H0.timestamp() + 3600:.0f}"), ("end", f"{end:.0f}"), ("step", "3600")]
        deadline = time.monotonic() + 30   # VictoriaMetrics makes an import searchable within a second or so
        while _bare_get(server.url, "label/node/values", nodes) != ["sfo1-n1", "sfo1-n2"]:
            assert time.monotonic() < deadline, "the store never listed the imported nodes"
            time.sleep(0.2)
        assert client.get("label/node/values", nodes) == ["sfo1-n1", "sfo1-n2"]
        answer = client.post("query_range", dict(query))
        assert answer == _bare_get(server.url, "query_range", query)
        assert isinstance(answer, dict) and len(answer["result"]) == 3
