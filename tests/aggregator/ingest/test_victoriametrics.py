"""The Prometheus source against a real VictoriaMetrics: the same PromQL, the same totals.

The history is the one the Prometheus end-to-end test backfills (constant
power on whole hours, one counter reset), imported into VictoriaMetrics; the
hand-computed totals of test_agg_e2e must come out unchanged.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from fixtures.agg.e2e import GPU, H0, HOURS, check_totals, history, run
from fixtures.agg.vmserver import VictoriaMetricsServer, have_victoria_metrics
from shared_data import needs_ciso
from wattfleet.aggregator.ingest.run import get_watermark
from wattfleet.aggregator.store.database import open_store
from wattfleet.core import catalog

pytestmark = [needs_ciso, pytest.mark.prometheus,
              pytest.mark.skipif(not have_victoria_metrics(), reason="victoria-metrics not installed")]


@pytest.fixture(scope="module")
def vm():
    with VictoriaMetricsServer() as server:
        server.import_openmetrics(history().openmetrics())
        deadline = time.monotonic() + 30
        while True:
            import json
            import urllib.parse
            import urllib.request
            q = urllib.parse.urlencode({"query": f"count({catalog.GPU_ENERGY.series})",
                                        "time": (H0 + timedelta(hours=1)).timestamp()})
            with urllib.request.urlopen(f"{server.url}/api/v1/query?{q}", timeout=10) as r:
                result = json.load(r)["data"]["result"]
            if result and float(result[0]["value"][1]) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        yield server


@pytest.fixture
def cfg(tmp_path):
    from fixtures.agg.e2e import config_text
    from wattfleet.aggregator.config.load import load_facility
    p = tmp_path / "facility.yaml"
    p.write_text(config_text())
    return load_facility(p)


def test_victoriametrics_gives_the_hand_computed_totals(vm, cfg, tmp_path):
    con = open_store(tmp_path / "wf.duckdb")
    result = run(con, cfg, vm.url, page_hours=3)  # two pages, one query per metric per page
    assert result.windows == HOURS
    check_totals(con)
    rows = con.execute("SELECT node, device, gpu_model, count(*), sum(joules) FROM stg_energy_hourly "
                       "WHERE component = 'gpu' GROUP BY ALL ORDER BY node, device").fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [("sfo1-n1", "0", GPU, HOURS), ("sfo1-n1", "1", GPU, HOURS),
                                                        ("sfo1-n2", "0", GPU, HOURS)]
    assert rows[1][4] == pytest.approx(200 * 3600 * HOURS)  # the counter reset loses nothing
    inf = dict(con.execute("SELECT phase, sum(tokens) FROM stg_inference_hourly GROUP BY phase").fetchall())
    assert inf == {"prefill": pytest.approx(20 * 3600 * HOURS), "decode": pytest.approx(5 * 3600 * HOURS)}
    assert get_watermark(con, "prometheus") == (H0 + timedelta(hours=HOURS)).replace(tzinfo=None)
    before = con.execute("SELECT * FROM rollup ORDER BY ALL").fetchall()
    run(con, cfg, vm.url)  # duplicate run: identical, to the bit
    assert con.execute("SELECT * FROM rollup ORDER BY ALL").fetchall() == before
