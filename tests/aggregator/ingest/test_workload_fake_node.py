"""The aggregator over the exporter's own workload series: k8snode's fake node (real sampler, NVML and RAPL readers
and workload sensor over fake NVML, powercap and cgroup tree, the kubelet's GPU assignment in memory) scraped twice,
an hour apart, through the embedded path into the workload facts. Per component the workload facts add up to the
node's device facts; namespaces and teams come only from the workload series.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from fixtures.agg.facts_store import store_from_config
from wattfleet.aggregator.ingest.embedded import EmbeddedSource, parse_exposition
from wattfleet.aggregator.ingest.writer import write_window
from wattfleet.aggregator.store.database import rebuild_month
from wattfleet.aggregator.store.rows import one_row
from wattfleet.exporter.workloads.devices import DeviceHolder
from wattfleet.sim.fake_cgroup import slurm_job
from workload_fixtures import FakeNode, MemoryLister

T0 = datetime(2026, 10, 1, 0, 0)
CONFIG = """\
version: 1
sites:
  - name: s
    zone: Z
    grid: {source: static, grams_per_kwh: 300}
    pue: 1.4
    wue_liters_per_kwh: 1.0
    nodes: ["n"]
    overhead: {ratio: 0.05}
embodied:
  - {node: "n", kg_co2e: 1000, life_years: 5}
teams:
  - {team: ml, namespace: "ml-*"}
  - {team: hpc, workload: "slurm/*"}
"""


def store_scrape(con, body: bytes, ts: datetime) -> None:
    for name, labels, value in parse_exposition(body.decode()):
        con.execute("INSERT INTO emb_sample VALUES (?, 'n:9102', ?, ?, ?)",
                    [ts, name, json.dumps(labels, sort_keys=True), value])


def test_fake_node_workload_series_through_embedded_mode_add_up_to_the_node(tmp_path):
    lister = MemoryLister([DeviceHolder("ml-train", "trainer-0", "main", "nvidia.com/gpu", "GPU-0000")])
    node = FakeNode(tmp_path / "node", gpus=2, lister=lister)   # GPU-0001 is held by no pod: unallocated
    try:
        web = node.tree.add_pod("web", "api-0", "1111-2222")
        job = node.tree.add(slurm_job("77"))
        rel = {c.path: r for r, c in node.tree.cgroups.items()}
        usage = {rel[web.path]: 2.0, rel[job.path]: 3.0}
        node.step(usage, system_seconds=1.0)
        con, _ = store_from_config(tmp_path, CONFIG)
        assert node.sampler.snapshot is not None
        store_scrape(con, node.sampler.snapshot.body, T0)
        for _ in range(6):   # an hour in 600 s steps (the RAPL counters wrap at ~262 kJ; 240 W x 600 s is below)
            node.step({k: v * 600 for k, v in usage.items()}, system_seconds=600.0, seconds=600.0)
        store_scrape(con, node.sampler.snapshot.body, T0 + timedelta(hours=1))
    finally:
        node.close()
    con.execute("INSERT INTO stg_grid_intensity VALUES ('Z', ?, 'average', 300, NULL, 'test', false, NULL)", [T0])
    tel = EmbeddedSource(con).fetch(T0, T0 + timedelta(hours=1))
    assert tel.workload and not tel.collector_errors
    write_window(con, "embedded", T0, tel)
    rebuild_month(con, T0.date())

    sums = "sum(it_kwh), sum(facility_kwh), sum(scope2_location_g), sum(scope3_embodied_g), sum(water_onsite_l)"
    by_component = {r[0]: r[1:] for r in con.execute(
        f"SELECT CASE WHEN component = 'cpu' AND domain = 'dram' THEN 'dram' ELSE component END, {sums} "
        "FROM fact_device_hour GROUP BY 1").fetchall()}
    workload = {r[0]: r[1:] for r in con.execute(f"SELECT component, {sums} FROM fact_workload_hour GROUP BY 1"
                                                 ).fetchall()}
    assert set(workload) == set(by_component) == {"gpu", "cpu", "dram", "overhead"}
    for component, figures in by_component.items():
        assert workload[component] == pytest.approx(figures, rel=1e-9), component
    assert one_row(con, "SELECT count(*) FROM fact_workload_hour WHERE share = 'unattributed'")[0] == 0

    teams = dict(con.execute("SELECT key, it_kwh FROM rollup WHERE period = 'month' AND dimension = 'team'"
                             ).fetchall())
    assert {"ml", "hpc", "(unmapped)", "(idle)", "(system)", "(unallocated)"} <= set(teams)
    fleet = one_row(con, "SELECT it_kwh FROM rollup WHERE period = 'month' AND dimension = 'fleet'")[0]
    assert sum(teams.values()) == pytest.approx(fleet, rel=1e-9)
    # GPU-0000 (100 W) is the training pod's, GPU-0001 (150 W) nobody's: 100 : 150 of the GPUs' hour
    gpu = dict(con.execute("SELECT share, sum(it_kwh) FROM fact_workload_hour WHERE component = 'gpu' GROUP BY 1"
                           ).fetchall())
    assert gpu["workload"] / gpu["unallocated"] == pytest.approx(100 / 150, rel=1e-3)
    namespaces = {k for (k,) in con.execute(
        "SELECT key FROM rollup WHERE period = 'month' AND dimension = 'namespace'").fetchall()}
    assert {"ml-train", "web", "(none)"} <= namespaces   # the Slurm job has no namespace
