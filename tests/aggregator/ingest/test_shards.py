"""Series shards by node against a real Prometheus: sharded and unsharded ingests store the same rows.

Node names carry regex metacharacters (a shard matcher must match each name exactly), and one series
has no node label at all (the first shard must still pick it up).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from fixtures.agg.backfill import History, Series, whole_hours_ago
from promserver import PROMTOOL, PrometheusServer, have_prometheus
from wattfleet.aggregator.ingest.batch import TelemetryBatch
from wattfleet.aggregator.ingest.prometheus import PrometheusSource
from wattfleet.aggregator.ingest.shards import regex_literal, shard_matchers
from wattfleet.aggregator.ingest.writer import write_page
from wattfleet.aggregator.store.database import open_store
from wattfleet.core import catalog

NODES = ["a.1", "a+2", "b(3)", "c|4", "d[5]", "n6", "n7"]
H0 = whole_hours_ago(5)
HOURS = 3


def test_regex_literal_matches_only_itself() -> None:
    for name in NODES + ["x.y*z?", r"back\slash", "^$"]:
        pattern = re.compile(regex_literal(name))
        assert pattern.fullmatch(name) and not pattern.fullmatch(name + "x")
    assert shard_matchers(["b", "a"], 5) == [""]          # one shard: no matcher at all
    assert shard_matchers(["c", "b", "a"], 2) == ['node=~"|a|b"', 'node=~"c"']


@pytest.fixture(scope="module")
def prom():
    if not have_prometheus():
        pytest.skip("prometheus is not installed")
    gpu, cpu = catalog.GPU_ENERGY, catalog.CPU_ENERGY
    series = []
    for i, node in enumerate(NODES):
        for g in range(2):
            series.append(Series(gpu, dict(node=node, cluster="c", site="s", gpu=str(g), uuid=f"GPU-{i}-{g}",
                                           model="H100", method="measured"), 100 + 10 * i + g))
        series.append(Series(cpu, dict(node=node, cluster="c", site="s", socket="0", domain="package",
                                       method="measured"), 50 + i))
    series.append(Series(gpu, dict(cluster="c", site="s", gpu="0", uuid="GPU-nonode", model="H100",
                                   method="measured"), 77))
    server = PrometheusServer(targets=[])
    History(H0, HOURS, series).write_blocks(PROMTOOL, server.dir / "data")
    with server:
        server.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=len(NODES) * 2 + 1, timeout=30)
        yield server


def _ingest(url: str, db: Path, shard_nodes: int) -> tuple[list[tuple], int]:
    source = PrometheusSource(url, shard_nodes=shard_nodes, retries=0)
    start = H0.replace(tzinfo=None)
    con = open_store(db)
    write_page(con, "prometheus", start, start + timedelta(hours=HOURS), source.batches(start, start +
                                                                                        timedelta(hours=HOURS)))
    rows = con.execute("SELECT * EXCLUDE (source) FROM stg_energy_hourly ORDER BY ALL").fetchall()
    con.close()
    return rows, source.queries_made


@pytest.mark.prometheus
def test_sharded_and_unsharded_ingests_store_the_same_rows(prom: PrometheusServer, tmp_path: Path) -> None:
    whole, whole_queries = _ingest(prom.url, tmp_path / "whole.duckdb", 0)
    sharded, sharded_queries = _ingest(prom.url, tmp_path / "sharded.duckdb", 2)
    assert len(whole) == HOURS * (len(NODES) * 3 + 1)
    assert sharded == whole
    assert {r[1] for r in sharded} == set(NODES) | {""}
    # 8 queries per shard (2 energy, 2 inference, 2 collector errors, prompt tokens, workload energy);
    # sharded: 4 shards + listing
    assert (whole_queries, sharded_queries) == (8, 4 * 8 + 1)


@pytest.mark.prometheus
def test_a_batch_outside_the_page_is_refused(prom: PrometheusServer, tmp_path: Path) -> None:
    source = PrometheusSource(prom.url, retries=0)
    start = H0.replace(tzinfo=None)
    con = open_store(tmp_path / "wf.duckdb")
    batches = list(source.batches(start, start + timedelta(hours=2)))
    with pytest.raises(ValueError, match="outside the page"):
        write_page(con, "prometheus", start, start + timedelta(hours=1), iter(batches))
    assert con.execute("SELECT count(*) FROM stg_energy_hourly").fetchone() == (0,)   # rolled back
    assert isinstance(batches[0], TelemetryBatch)
