"""`wattfleet aggregate` against stores as deployed: TLS with a private CA and basic auth on a real
Prometheus (its own --web.config.file), a real VictoriaMetrics under its /prometheus path with a tenant
header, DuckDB's resource settings, and Retry-After.

The Prometheus web config follows prometheus/exporter-toolkit docs/web-configuration.md (the format
Prometheus 2.42 reads with --web.config.file).
"""

from __future__ import annotations

import base64
import ssl
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import bcrypt
import pytest
from tls_fixtures import self_signed

from fixtures.agg.e2e import H0, HOURS, check_totals, config_text, history
from fixtures.agg.vmserver import VictoriaMetricsServer, have_victoria_metrics
from promserver import PROMTOOL, PrometheusServer, have_prometheus
from shared_data import needs_ciso
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.ingest.store_client import StoreClient, _retry_after_seconds
from wattfleet.aggregator.store.database import open_store
from wattfleet.aggregator.store.settings import StoreSettings
from wattfleet.cli import main
from wattfleet.core.http import HttpServer
from wattfleet.core.routes import JSON, Response, Routes

OK = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'


class TlsPrometheus(PrometheusServer):
    """A real Prometheus that serves only TLS and only to the basic-auth user ``reader``."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(targets=[])
        self.cert, key = self_signed(tmp)
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
        web = tmp / "web.yml"
        web.write_text(f"tls_server_config:\n  cert_file: {self.cert}\n  key_file: {key}\n"
                       f"basic_auth_users:\n  reader: '{hashed}'\n")
        self.extra_args = [f"--web.config.file={web}"]
        self.url = f"https://127.0.0.1:{self.port}"
        # the shared start() polls readiness over TLS, as the user reader
        self.ready_context = ssl.create_default_context(cafile=str(self.cert))
        self.ready_headers = {"Authorization": "Basic " + base64.b64encode(b"reader:s3cret").decode()}


def _aggregate(tmp: Path, url: str, *flags: str) -> int:
    cfg = tmp / "facility.yaml"
    cfg.write_text(config_text())
    return main(["aggregate", "--config", str(cfg), "--db", str(tmp / "wf.duckdb"), "--prometheus", url,
                 "--from", H0.isoformat(), "--to", (H0 + timedelta(hours=HOURS)).isoformat(), "--no-progress",
                 *flags])


@needs_ciso
@pytest.mark.prometheus
@pytest.mark.skipif(not have_prometheus(), reason="prometheus is not installed")
def test_aggregate_reads_a_prometheus_behind_tls_and_basic_auth(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    server = TlsPrometheus(tmp_path)
    history().write_blocks(PROMTOOL, server.dir / "data")
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    spill = tmp_path / "spill"
    with server:
        access = ["--prometheus.ca-file", str(server.cert), "--prometheus.basic-auth-user", "reader"]
        assert _aggregate(tmp_path, server.url, *access, "--retries", "0") == 1   # no password: 401
        assert "HTTP 401" in capsys.readouterr().err
        assert _aggregate(tmp_path, server.url, "--retries", "0", "--prometheus.basic-auth-user", "reader",
                          "--prometheus.basic-auth-password-file", str(password)) == 1   # unknown CA
        assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err
        assert _aggregate(tmp_path, server.url, *access, "--prometheus.basic-auth-password-file", str(password),
                          "--shard-nodes", "1", "--duckdb-memory-limit", "300MB", "--duckdb-threads", "1",
                          "--duckdb-temp-directory", str(spill)) == 0
    con = open_store(tmp_path / "wf.duckdb")
    check_totals(con)
    nodes = con.execute("SELECT DISTINCT node FROM stg_energy_hourly ORDER BY 1").fetchall()
    assert nodes == [("sfo1-n1",), ("sfo1-n2",)]   # two shards of one node each, both read


@needs_ciso
@pytest.mark.prometheus
@pytest.mark.skipif(not have_victoria_metrics(), reason="victoria-metrics not installed")
def test_aggregate_reads_victoriametrics_under_its_prometheus_path_with_a_tenant(tmp_path: Path) -> None:
    with VictoriaMetricsServer() as vm:
        vm.import_openmetrics(history().openmetrics())
        urllib.request.urlopen(f"{vm.url}/internal/force_flush", timeout=30).read()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            code = _aggregate(tmp_path, f"{vm.url}/prometheus", "--prometheus.tenant", "team-a",
                              "--prometheus.header", "AccountID: 0", "--shard-nodes", "1")
            con = open_store(tmp_path / "wf.duckdb")
            done = con.execute("SELECT count(DISTINCT node) FROM stg_energy_hourly").fetchone() == (2,)
            if code == 0 and done:
                break
            con.close()
            time.sleep(0.5)
        check_totals(con)


def test_duckdb_settings_are_applied_and_checked(tmp_path: Path) -> None:
    settings = StoreSettings("300MB", 1, str(tmp_path / "spill"))
    con = open_store(tmp_path / "wf.duckdb", settings=settings)
    got = con.execute("SELECT current_setting('memory_limit'), current_setting('threads'), "
                      "current_setting('temp_directory')").fetchone()
    assert got is not None and got[1] == 1 and got[2] == str(tmp_path / "spill")
    assert got[0].replace(" ", "").upper() in ("286.1MIB", "300.0MB", "286.1MB")
    for bad in ("lots", "1; DROP TABLE x", "-1GB"):
        with pytest.raises(ValueError, match="memory limit"):
            StoreSettings(memory_limit=bad)
    with pytest.raises(ValueError, match="threads"):
        StoreSettings(threads=0)


def test_config_store_section_and_flags_over_it(tmp_path: Path) -> None:
    cfg = tmp_path / "facility.yaml"
    cfg.write_text(config_text() + "store: {memory_limit: 2GB, threads: 3, temp_directory: spill}\n")
    loaded = load_facility(cfg)
    assert loaded.store == StoreSettings("2GB", 3, str(tmp_path / "spill"))
    assert StoreSettings(threads=1).merged(loaded.store) == StoreSettings("2GB", 1, str(tmp_path / "spill"))
    cfg.write_text(config_text() + "store: {memory_limit: lots, threads: 1.5}\n")
    with pytest.raises(Exception, match=r"store.memory_limit.*a size such as.*\n.*|store.threads"):
        load_facility(cfg)


@pytest.fixture
def busy_server() -> Iterator[tuple[list[Response], HttpServer]]:
    answers: list[Response] = []

    def handle(request: object) -> Response:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    server = HttpServer("127.0.0.1:0", Routes(exact={"/api/v1/query_range": handle}))
    server.start()
    yield answers, server
    server.stop()


def test_retry_after_is_honoured(busy_server: tuple[list[Response], HttpServer]) -> None:
    answers, server = busy_server
    answers[:] = [Response(429, b"slow down", headers={"Retry-After": "1"}), Response(200, OK, JSON)]
    client = StoreClient(f"http://127.0.0.1:{server.port}", retries=1, backoff_seconds=0.01)
    started = time.monotonic()
    assert client.post("query_range", {"query": "up"}) == {"resultType": "matrix", "result": []}
    assert time.monotonic() - started >= 1.0
    assert _retry_after_seconds("120") == 120.0
    assert _retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0   # in the past: no wait
    assert _retry_after_seconds("soon") is None
