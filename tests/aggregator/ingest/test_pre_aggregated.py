"""Pre-aggregation: the generated hourly-energy rules, evaluated by Prometheus, give the raw query's rows.

A first Prometheus holds the raw counters; ``promtool tsdb create-blocks-from rules`` has it evaluate
the generated rule group (rules/wattfleet-hourly-energy.yaml of `dashboards build`) over the history
and writes the recorded series as blocks, the documented way to give recording rules a
past. Like a live Prometheus it evaluates the group at an offset within the hour (34 minutes here), so
this also checks the rule's hour-aligned subquery and the reader's window. A second Prometheus serves
raw and recorded blocks together, with the rule group loaded. The aggregator reading the recorded
series (``--pre-aggregated``) must store exactly the rows it stores reading the raw counters.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from fixtures.agg.e2e import H0, HOURS, history
from promserver import PROMTOOL, PrometheusServer, have_prometheus
from wattfleet.aggregator.ingest.prometheus import PrometheusSource
from wattfleet.aggregator.ingest.writer import write_page
from wattfleet.aggregator.store.database import open_store
from wattfleet.core import catalog, hourly_energy
from wattfleet.dashboards.build import HOURLY_ENERGY_FILE, render

pytestmark = [pytest.mark.prometheus,
              pytest.mark.skipif(not have_prometheus(), reason="prometheus/promtool not installed")]


def _rows(url: str, db: Path, pre_aggregated: bool, shard_nodes: int = 0) -> list[tuple]:
    source = PrometheusSource(url, pre_aggregated=pre_aggregated, shard_nodes=shard_nodes, retries=0)
    start = H0.replace(tzinfo=None)
    end = start + timedelta(hours=HOURS)
    con = open_store(db)
    write_page(con, "prometheus", start, end, source.batches(start, end))
    rows = con.execute("SELECT * EXCLUDE (source) FROM stg_energy_hourly ORDER BY ALL").fetchall()
    # energy by workload (recorded by the same rule group), keyed as the facts read it
    rows += con.execute("SELECT hour_utc, node, component, namespace, workload, share, round(sum(joules), 6) "
                        "FROM stg_workload_hourly GROUP BY ALL ORDER BY ALL").fetchall()
    con.close()
    return rows


def test_recorded_hourly_energy_equals_the_raw_query(tmp_path: Path) -> None:
    rules = tmp_path / "wattfleet-hourly-energy.yaml"
    rules.write_text(render()[HOURLY_ENERGY_FILE])
    assert yaml.safe_load(rules.read_text())["groups"] == [hourly_energy.recording_rule_group()]
    subprocess.run([PROMTOOL, "check", "rules", str(rules)], check=True, capture_output=True, timeout=60)
    raw = PrometheusServer(targets=[])
    history().write_blocks(PROMTOOL, raw.dir / "data")
    recorded = tmp_path / "recorded"
    with raw:
        raw.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=3, timeout=30)
        # The last hour's value is recorded within the hour after it: evaluate one hour past the end.
        subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "rules", f"--url={raw.url}",
                        f"--start={int(H0.timestamp())}", f"--end={int((H0 + timedelta(hours=HOURS + 1)).timestamp())}",
                        f"--output-dir={recorded}", str(rules)], check=True, capture_output=True, timeout=120)
    both = PrometheusServer(targets=[], rule_files=[rules])
    history().write_blocks(PROMTOOL, both.dir / "data")
    for block in recorded.iterdir():
        shutil.copytree(block, both.dir / "data" / block.name)
    with both:
        recorded_gpu = hourly_energy.RECORDED[catalog.GPU_ENERGY.name]
        both.wait_for(f"{recorded_gpu}[10d]", min_results=3, timeout=30)
        raw_rows = _rows(both.url, tmp_path / "raw.duckdb", pre_aggregated=False)
        pre_rows = _rows(both.url, tmp_path / "pre.duckdb", pre_aggregated=True)
        sharded = _rows(both.url, tmp_path / "pre-sharded.duckdb", pre_aggregated=True, shard_nodes=1)
    assert len(raw_rows) == HOURS * (6 + 5)   # 3 GPUs, package and dram on n1, package on n2; 5 workload rows
    assert pre_rows == raw_rows
    assert sharded == raw_rows
