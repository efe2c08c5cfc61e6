"""End to end by team: a real Prometheus holding the exporter's workload series -> aggregator -> team rollups,
carbon budgets and the Prometheus Operator's ``namespace`` collision (issue 17).

The history (tests/fixtures/agg/e2e.py) has node sfo1-n2 scraped as the Operator scrapes it: its device series and
its idle/system workload series carry the target's ``namespace="wattfleet"``. Nothing may be credited to that
namespace; the team ``ml`` gets exactly its workload share of the node's figures, and its budget burns by it.
"""

from __future__ import annotations

import pytest

from fixtures.agg.e2e import HOURS, ML_BUDGET_KG, OPERATOR_NS, TEAM_IT_PER_HOUR, check_totals, config_text, run
from promserver import have_prometheus
from shared_data import needs_ciso
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.planning.budgets import budget_burn_from_store
from wattfleet.aggregator.store.database import open_store
from wattfleet.aggregator.store.rows import one_row

pytestmark = [needs_ciso, pytest.mark.prometheus,
              pytest.mark.skipif(not have_prometheus(), reason="prometheus/promtool not installed")]
FIGURES = ("it_kwh", "facility_kwh", "scope1_g", "scope2_location_g", "scope2_market_g", "scope3_embodied_g",
           "scope3_upstream_g", "water_onsite_l", "water_offsite_l", "cfe_kwh", "gpu_hours")


@pytest.fixture(scope="module")
def store(prom, tmp_path_factory):
    d = tmp_path_factory.mktemp("teams")
    (d / "facility.yaml").write_text(config_text())
    con = open_store(d / "wf.duckdb")
    run(con, load_facility(d / "facility.yaml"), prom.url)
    yield con
    con.close()


def month_rollup(con, dimension: str) -> dict[str, dict[str, float]]:
    cols = ", ".join(FIGURES)
    rows = con.execute(f"SELECT key, {cols} FROM rollup WHERE period = 'month' AND dimension = ?",
                       [dimension]).fetchall()
    return {r[0]: dict(zip(FIGURES, r[1:], strict=True)) for r in rows}


def test_team_rollup_is_the_workload_share_and_adds_up_to_the_fleet(store):
    check_totals(store)  # the fleet's figures are untouched by the attribution
    teams, fleet = month_rollup(store, "team"), month_rollup(store, "fleet")["all"]
    assert set(teams) == set(TEAM_IT_PER_HOUR)
    for key, kwh in TEAM_IT_PER_HOUR.items():
        assert teams[key]["it_kwh"] == pytest.approx(kwh * HOURS, rel=1e-9), key
    for dimension in ("team", "namespace"):
        keys = month_rollup(store, dimension)
        for figure in FIGURES:
            assert sum(v[figure] for v in keys.values()) == pytest.approx(fleet[figure], rel=1e-9), (dimension, figure)
    # every figure of ml is its share of its node: 230 of sfo1-n2's 330 W
    node = month_rollup(store, "node")["sfo1-n2"]
    for figure in ("facility_kwh", "scope2_location_g", "scope2_market_g", "water_onsite_l", "water_offsite_l"):
        assert teams["ml"][figure] == pytest.approx(node[figure] * 230 / 330, rel=1e-9), figure
    # embodied: the GPU's by the job's part of the GPU (200 of 250 W), the node's by its part of the node
    gpu_g, node_g = 164_000 / (4 * 8760), 1_000_000 / (5 * 8760)
    assert teams["ml"]["scope3_embodied_g"] == pytest.approx(HOURS * (gpu_g * 200 / 250 + node_g * 230 / 330))
    assert teams["ml"]["gpu_hours"] == pytest.approx(HOURS * 200 / 250)


def test_device_series_namespace_of_the_scrape_target_is_never_credited(store):
    """The Operator collision: sfo1-n2's GPU and CPU series carry namespace="wattfleet"; so do its idle and system
    workload series (an empty label is absent, so the target's is added), and the web deployment's series, stored as
    a scrape without honor_labels stores them (their own namespace in exported_namespace). None of it reaches the
    exporter's namespace; web is web's."""
    namespaces = month_rollup(store, "namespace")
    assert OPERATOR_NS not in namespaces
    assert set(namespaces) == {"ml-train", "web", "(idle)", "(system)", "(unattributed)"}
    assert store.execute("SELECT count(*) FROM fact_workload_hour WHERE namespace = ?", [OPERATOR_NS]
                         ).fetchone()[0] == 0
    per_workload = store.execute("SELECT namespace, workload, team, round(it_kwh, 9) FROM rollup_workload "
                                 "WHERE period = 'month' AND share = 'workload' ORDER BY 1").fetchall()
    assert per_workload == [("ml-train", "job/train", "ml", round(TEAM_IT_PER_HOUR["ml"] * HOURS, 9)),
                            ("web", "deployment/web", None, round(TEAM_IT_PER_HOUR["(unmapped)"] * HOURS, 9))]


def test_team_budget_burns_by_the_team_rollup(store):
    [burn] = [b for b in budget_burn_from_store(store) if b.scope_owner == "team:ml"]
    ml = month_rollup(store, "team")["ml"]
    used_g = ml["scope2_location_g"] + ml["scope1_g"] + ml["scope3_embodied_g"] + ml["scope3_upstream_g"]
    assert burn.used_kg == pytest.approx(used_g / 1000, rel=1e-9) and burn.used_kg > 0
    assert burn.budget_kg == ML_BUDGET_KG and burn.rollup_rows == 1


def test_report_by_team_and_monthly_chargeback_csv_and_parquet(prom, tmp_path):
    import csv

    import duckdb

    from wattfleet.aggregator.outputs.report import write_report
    (tmp_path / "facility.yaml").write_text(config_text())
    cfg = load_facility(tmp_path / "facility.yaml")
    con = open_store(tmp_path / "wf.duckdb")
    run(con, cfg, prom.url)
    fleet = month_rollup(con, "fleet")["all"]
    month = one_row(con, "SELECT min(hour_utc) FROM fact_device_hour")[0].strftime("%Y-%m")
    con.close()
    out = tmp_path / "report"
    write_report(tmp_path / "wf.duckdb", month, out, cfg)
    md = (out / "report.md").read_text()
    assert "## By team" in md and "| ml |" in md and "| (idle) |" in md and f"| {OPERATOR_NS} |" not in md
    with open(out / "chargeback_by_team.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["team"] for r in rows] == ["ml", "(idle)", "(system)", "(unattributed)", "(unmapped)"]
    assert rows[0]["period_start"].startswith(f"{month}-01") and rows[0]["workloads"] == "1"
    assert rows[0]["period_end"] > rows[0]["period_start"]
    assert {"it_kwh", "facility_kwh", "scope2_location_kg", "scope2_market_kg", "scope3_embodied_kg",
            "total_location_kg", "total_market_kg", "water_onsite_l", "water_offsite_l", "gpu_hours"} <= set(rows[0])
    assert sum(float(r["facility_kwh"]) for r in rows) == pytest.approx(fleet["facility_kwh"], rel=1e-9)
    assert float(rows[0]["it_kwh"]) == pytest.approx(TEAM_IT_PER_HOUR["ml"] * HOURS, rel=1e-9)
    parquet = duckdb.connect().execute(
        f"SELECT team, scope2_market_kg FROM read_parquet('{out / 'chargeback_by_team.parquet'}') ORDER BY ALL"
    ).fetchall()
    assert sorted((r["team"], pytest.approx(float(r["scope2_market_kg"]))) for r in rows) == parquet
