"""Energy by workload through the embedded path: the contract's exposition -> staging -> workload facts and rollups.

The fixture expositions (tests/fixtures/agg/workload/scrape_{1,2}.prom) are one node's two scrapes an hour apart,
written in the format the issue-17 contract fixes; their header gives each series' watts.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from fixtures.agg.facts_store import store_from_config
from paths import REPO
from wattfleet.aggregator.ingest.embedded import EmbeddedSource, parse_exposition
from wattfleet.aggregator.ingest.prometheus import energy_queries, workload_query
from wattfleet.aggregator.ingest.telemetry import WORKLOAD_BAD_LABELS, WORKLOAD_COLLECTOR, workload_fields_from_labels
from wattfleet.aggregator.ingest.writer import write_window
from wattfleet.aggregator.store.database import rebuild_month
from wattfleet.core import catalog

FIXTURES = REPO / "tests" / "fixtures" / "agg" / "workload"
T0 = datetime(2026, 10, 1, 0, 0)
H = 3600.0
CONFIG = """\
version: 1
sites:
  - name: s
    zone: Z
    grid: {source: static, grams_per_kwh: 300}
    pue: 1.5
    wue_liters_per_kwh: 2.0
    nodes: ["n*"]
    overhead: {ratio: 0.1}
embodied:
  - {gpu_model: "*H100*", kg_co2e: 164, life_years: 4}
teams:
  - {team: ml, namespace: "ml-*"}
  - {team: web-team, workload: "deployment/*", cluster: "c1"}
  - {team: never, namespace: "web"}
"""


def scrape(con, n: int, ts: datetime) -> None:
    for name, labels, value in parse_exposition((FIXTURES / f"scrape_{n}.prom").read_text()):
        con.execute("INSERT INTO emb_sample VALUES (?, 'n1:9102', ?, ?, ?)",
                    [ts, name, json.dumps(labels, sort_keys=True), value])


@pytest.fixture
def store(tmp_path):
    con, _ = store_from_config(tmp_path, CONFIG)
    con.execute("INSERT INTO stg_grid_intensity VALUES ('Z', ?, 'average', 300, NULL, 'test', false, NULL)", [T0])
    scrape(con, 1, T0)
    scrape(con, 2, T0 + timedelta(hours=1))
    tel = EmbeddedSource(con).fetch(T0, T0 + timedelta(hours=1))
    write_window(con, "embedded", T0, tel)
    rebuild_month(con, T0.date())
    return con, tel


def test_embedded_workload_rows_sum_pods_and_blank_non_workload_shares(store):
    _, tel = store
    rows = {(r.component, r.namespace, r.workload, r.share): r.joules for r in tel.workload}
    assert rows == {
        ("gpu", "ml-train", "job/train", "workload"): pytest.approx(200 * H),  # pods train-0 and train-1 summed
        ("gpu", "", "", "unallocated"): pytest.approx(100 * H),
        ("cpu", "web", "deployment/web", "workload"): pytest.approx(30 * H),
        ("cpu", "", "", "idle"): pytest.approx(40 * H), ("cpu", "", "", "system"): pytest.approx(10 * H),
        ("dram", "web", "deployment/web", "workload"): pytest.approx(5 * H),
        ("dram", "", "", "idle"): pytest.approx(5 * H),
    }
    # the "bonus" share is not the contract's: rejected, counted for the report, never summed
    [bad] = [e for e in tel.collector_errors if e.collector == WORKLOAD_COLLECTOR]
    assert (bad.node, bad.reason, bad.readings) == ("n1", WORKLOAD_BAD_LABELS, 1.0)


def test_workload_facts_add_up_to_the_node_in_every_figure(store):
    con, _ = store
    figures = ("it_kwh", "facility_kwh", "scope2_location_g", "scope2_market_g", "scope3_embodied_g",
               "scope3_upstream_g", "water_onsite_l", "water_offsite_l", "cfe_kwh")
    sums = ", ".join(f"sum({f})" for f in figures)
    device = con.execute(f"SELECT {sums} FROM fact_device_hour").fetchone()
    workload = con.execute(f"SELECT {sums} FROM fact_workload_hour").fetchone()
    assert workload == pytest.approx(device, rel=1e-12)
    # per component: gpu 300 W, cpu 80 W, dram 10 W, overhead 10% of 390 W, split by the series' shares
    parts = {(c, s, ns): (kwh, ratio) for c, s, ns, kwh, ratio in con.execute(
        "SELECT component, share, namespace, it_kwh, share_ratio FROM fact_workload_hour").fetchall()}
    assert parts[("gpu", "workload", "ml-train")] == (pytest.approx(0.2), pytest.approx(2 / 3))
    assert parts[("cpu", "idle", "")] == (pytest.approx(0.04), pytest.approx(0.5))
    assert parts[("dram", "workload", "web")] == (pytest.approx(0.005), pytest.approx(0.5))
    assert parts[("overhead", "workload", "ml-train")] == (pytest.approx(0.039 * 200 / 390), pytest.approx(200 / 390))
    # the GPU's embodied share follows its energy: 2/3 to the job, 1/3 unallocated
    emb = dict(con.execute("SELECT share, sum(scope3_embodied_g) FROM fact_workload_hour WHERE component = 'gpu' "
                           "GROUP BY share").fetchall())
    assert emb["workload"] == pytest.approx(164_000 / (4 * 8760) * 2 / 3)


def test_teams_first_matching_rule_and_share_keys_in_the_rollups(store):
    con, _ = store
    teams = dict(con.execute("SELECT key, it_kwh FROM rollup WHERE period = 'month' AND dimension = 'team'"
                             ).fetchall())
    node_kwh = 0.39 * 1.1
    assert teams == {"ml": pytest.approx(0.2 + 0.039 * 200 / 390),  # the GPU part and its overhead part
                     "web-team": pytest.approx(0.035 + 0.039 * 35 / 390),  # not "never": the first match wins
                     "(unallocated)": pytest.approx(0.1 + 0.039 * 100 / 390),
                     "(idle)": pytest.approx(0.045 + 0.039 * 45 / 390),
                     "(system)": pytest.approx(0.01 + 0.039 * 10 / 390)}
    assert sum(teams.values()) == pytest.approx(node_kwh)
    ns = {k for (k,) in con.execute("SELECT key FROM rollup WHERE period = 'month' AND dimension = 'namespace'"
                                    ).fetchall()}
    assert ns == {"ml-train", "web", "(unallocated)", "(idle)", "(system)"}


def test_a_node_without_workload_series_is_kept_whole_as_unattributed(tmp_path):
    from fixtures.agg.facts_store import add_energy, add_workload
    con, _ = store_from_config(tmp_path, CONFIG)
    add_energy(con, T0, "n1", "0", 3.6e6, gpu_model="NVIDIA H100 80GB HBM3")
    add_energy(con, T0, "n2", "0", 7.2e6, gpu_model="NVIDIA H100 80GB HBM3")
    add_workload(con, T0, "n1", "gpu", 5.0, namespace="ml-a", workload="job/a")  # any scale: only shares count
    rebuild_month(con, T0.date())
    rows = con.execute("SELECT node, component, share, team, it_kwh FROM fact_workload_hour ORDER BY ALL").fetchall()
    assert rows == [("n1", "gpu", "workload", "ml", pytest.approx(1.0)),
                    ("n1", "overhead", "workload", "ml", pytest.approx(0.1)),
                    ("n2", "gpu", "unattributed", None, pytest.approx(2.0)),
                    ("n2", "overhead", "unattributed", None, pytest.approx(0.2))]


def test_namespace_only_from_workload_series():
    """The Operator collision, at the label level: a target's ``namespace`` on device series is never queried, and on
    workload series it counts only where share="workload" (``exported_namespace`` first, where honor_labels is off)."""
    for expr in energy_queries().values():
        assert "namespace" not in expr and "team" not in expr
    assert catalog.WORKLOAD_ENERGY.series in workload_query()
    base = {"node": "n", "component": "cpu"}
    idle = workload_fields_from_labels({**base, "share": "idle", "namespace": "wattfleet", "pod": "exporter-x"})
    assert idle is not None and idle[4:] == ("", "", "idle")
    job = workload_fields_from_labels({**base, "share": "workload", "namespace": "wattfleet",
                                       "exported_namespace": "ml", "workload": "job/x"})
    assert job is not None and job[4:] == ("ml", "job/x", "workload")
    plain = workload_fields_from_labels({**base, "share": "workload", "namespace": "ml", "workload": "job/x"})
    assert plain is not None and plain[4] == "ml"
    assert workload_fields_from_labels({**base, "component": "psys", "share": "idle"}) is None
