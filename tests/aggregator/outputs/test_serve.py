"""`wattfleet serve`: catalog metrics from the database, clean for promtool."""

from __future__ import annotations

import subprocess
import urllib.request
from datetime import date, datetime, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from paths import FACILITY_EXAMPLE as EXAMPLE
from promserver import PROMTOOL, free_port, have_prometheus
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.outputs.serve import AggregatorServer, render
from wattfleet.aggregator.store.database import load_dimensions, open_store, rebuild_month
from wattfleet.core import catalog


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "wf.duckdb"
    con = open_store(path)
    cfg = load_facility(EXAMPLE)
    load_dimensions(con, cfg)
    con.execute("INSERT INTO stg_grid_intensity VALUES ('CISO', '2026-10-01 00:00', 'average', 250, 0.4, 'eia930', "
                "false, NULL), ('CISO', '2026-10-01 01:00', 'average', 200, 0.5, 'eia930', false, NULL)")
    con.execute("INSERT INTO stg_energy_hourly VALUES ('2026-10-01 00:00', 'sfo1-a', 'c', 'sfo1', '0', 'gpu', "
                "'gpu', 'NVIDIA H100', 'measured', 3600000, 'prometheus')")
    # the team comes from the workload series only (the example config maps research-* to ml-research)
    con.execute("INSERT INTO stg_workload_hourly VALUES ('2026-10-01 00:00', 'sfo1-a', 'c', 'sfo1', 'gpu', "
                "'research-llm', 'job/train', 'workload', 3600000, 'prometheus')")
    con.execute("INSERT INTO ingest_watermark VALUES ('prometheus', '2026-10-01 01:00', now())")
    rebuild_month(con, date(2026, 10, 1))
    con.close()
    return path, cfg


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_render_values(db):
    path, cfg = db
    con = open_store(path, read_only=True)
    body = render(con, cfg, now=datetime(2026, 10, 1, 1, 30, tzinfo=timezone.utc))
    s = samples(body)
    assert s[(catalog.GRID_INTENSITY.series, (("signal", "average"), ("source", "eia930"), ("zone", "CISO")))] == 200
    assert s[(catalog.GRID_INTENSITY_AGE.series, (("zone", "CISO"),))] == 1800
    assert s[(catalog.SITE_PUE.series, (("site", "sfo1"), ("zone", "CISO")))] == pytest.approx(1.35)
    assert s[(catalog.SITE_WUE.series, (("site", "arn1"), ("zone", "SE")))] == pytest.approx(0.4)
    it = s[(catalog.ROLLUP_ENERGY.series, (("kind", "it"), ("period", "2026-10"), ("site", "sfo1")))]
    fac = s[(catalog.ROLLUP_ENERGY.series, (("kind", "facility"), ("period", "2026-10"), ("site", "sfo1")))]
    assert it == pytest.approx(3.6e6 * 1.15) and fac == pytest.approx(it * 1.35)
    loc = s[(catalog.ROLLUP_EMISSIONS.series, (("period", "2026-10"), ("scope", "scope2_location"), ("site", "sfo1")))]
    assert loc == pytest.approx(1.15 * 1.35 * 250)
    assert s[(catalog.CARBON_BUDGET.series, (("period", "2026-10"), ("scope_owner", "team:ml-research")))] == 500_000
    used = s[(catalog.CARBON_BUDGET_USED.series, (("period", "2026-10"), ("scope_owner", "team:ml-research")))]
    assert used > 0
    assert s[(catalog.AGGREGATOR_WATERMARK.series, ())] == datetime(2026, 10, 1, 1, tzinfo=timezone.utc).timestamp()
    for name, _ in s:
        catalog.lookup(name)  # every published series is in the catalog


@pytest.mark.prometheus
@pytest.mark.skipif(not have_prometheus(), reason="promtool not installed")
def test_served_metrics_pass_promtool(db):
    path, cfg = db
    server = AggregatorServer(path, cfg, "127.0.0.1", free_port(), refresh_seconds=3600)
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            body = r.read()
    finally:
        server.stop()
    assert catalog.SITE_INFO.series.encode() in body
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    assert not (check.stdout + check.stderr).strip(), (check.stdout + check.stderr).decode()


def test_missing_database_still_serves_config(tmp_path):
    cfg = load_facility(EXAMPLE)
    server = AggregatorServer(tmp_path / "absent.duckdb", cfg, "127.0.0.1", free_port(), refresh_seconds=3600)
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            body = r.read()
    finally:
        server.stop()
    assert catalog.SITE_PUE.series.encode() in body and catalog.GRID_INTENSITY.series.encode() not in body
