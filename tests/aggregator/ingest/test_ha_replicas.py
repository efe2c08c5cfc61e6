"""Two Prometheus replicas of an HA pair scraping the same exporters: each joule is counted once.

Through a real Prometheus whose history holds every series twice, identical but for the replica
label an HA pair (or a Thanos/Mimir store fed by both) keeps on them.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from fixtures.agg.backfill import History
from fixtures.agg.e2e import HOURS, TEAM_IT_PER_HOUR, check_totals, history, run
from promserver import PROMTOOL, PrometheusServer, have_prometheus
from shared_data import needs_ciso
from wattfleet.aggregator.store.database import open_store
from wattfleet.aggregator.store.rows import one_row
from wattfleet.core import catalog

pytestmark = [needs_ciso, pytest.mark.prometheus,
              pytest.mark.skipif(not have_prometheus(), reason="prometheus/promtool not installed")]

REPLICA_LABEL = "prometheus_replica"


def replicated(h: History) -> History:
    """Every series of ``h`` once per replica, differing only in the replica label."""
    return replace(h, series=[replace(s, labels={**s.labels, REPLICA_LABEL: r})
                              for s in h.series for r in ("prom-a", "prom-b")])


@pytest.fixture(scope="module")
def ha_prom():
    server = PrometheusServer(targets=[])
    replicated(history()).write_blocks(PROMTOOL, server.dir / "data")
    with server:
        server.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=6, timeout=30)
        yield server


def test_replica_duplicates_are_counted_once(ha_prom, cfg, tmp_path):
    """Guards the ``max by (...)`` of every PromQL in aggregator/ingest/prometheus.py: the by-list leaves out
    the replica label, so the two copies of a series collapse into one (a ``sum by`` would double it)."""
    raw = ha_prom.query(f'count by ({REPLICA_LABEL}) (last_over_time({catalog.GPU_ENERGY.series}[10d]))')
    assert sorted(r["metric"][REPLICA_LABEL] for r in raw) == ["prom-a", "prom-b"]  # the store holds both
    con = open_store(tmp_path / "wf.duckdb")
    run(con, cfg, ha_prom.url)
    check_totals(con)  # the hand-computed totals of the single-replica history, all of them
    assert one_row(con, "SELECT count(*) FROM stg_energy_hourly")[0] == HOURS * 6
    inf = dict(con.execute("SELECT phase, sum(energy_joules) FROM stg_inference_hourly GROUP BY phase").fetchall())
    tokens = dict(con.execute("SELECT phase, sum(tokens) FROM stg_inference_hourly GROUP BY phase").fetchall())
    assert inf["prefill"] == pytest.approx(50 * 3600 * HOURS) and inf["decode"] == pytest.approx(150 * 3600 * HOURS)
    assert tokens["prefill"] == pytest.approx(20 * 3600 * HOURS) and tokens["decode"] == pytest.approx(5 * 3600 * HOURS)
    # energy by workload: the inner ``max by`` of the workload query collapses the copies before pods are summed
    teams = dict(con.execute("SELECT key, it_kwh FROM rollup WHERE period = 'month' AND dimension = 'team'").fetchall())
    assert teams == {key: pytest.approx(kwh * HOURS, rel=1e-9) for key, kwh in TEAM_IT_PER_HOUR.items()}

