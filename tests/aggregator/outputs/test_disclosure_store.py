"""Disclosures, budget burn and shift analysis on a small fixture fleet run through the real facts SQL.

The fleet: site ``a`` (CISO, PUE 1.5 with one metered hour at 1.2, residual mix
400 g) runs a training job (2 measured H100s at 0.5 kWh/h and an estimated CPU
at 0.2 kWh/h) for four hours; site ``b`` (SE, PUE 1.1) serves llama-3-70b on
one H100 at 0.4 kWh/h, of which prefill 0.1 and decode 0.2 kWh/h. Every
number the disclosure prints is checked against a direct SUM over the facts.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from fixtures.agg.disclosure_fleet import FACILITY, NOV, OCT, UTC, build
from paths import REPO
from wattfleet.aggregator.config.flexible import parse_flexible
from wattfleet.aggregator.outputs.disclosure import DisclosureError, disclosure_from_store
from wattfleet.aggregator.planning.budgets import budget_burn_from_store, catalog_samples
from wattfleet.aggregator.planning.shift import energy_rows_from_store, factor_from_store, shift_analysis
from wattfleet.cli import main
from wattfleet.core import catalog


def direct(con, expr: str, where: str, table: str = "fact_workload_hour") -> float:
    return con.execute(f"SELECT {expr} FROM {table} WHERE {where}").fetchone()[0]


def test_implausible_grid_hours_are_a_data_quality_flag(fleet):
    """docs/accounting.md 5.3: an hour kept with implausible: flag is named in the disclosure, never silent."""
    _, con, _ = fleet
    con.execute("INSERT INTO stg_grid_implausible VALUES ('CISO', '2026-10-05 01:00', 'average', 'test reason')")
    try:
        j = disclosure_from_store(con, "training_run", "llm-v1", {"namespace": "train-*"}, OCT, NOV,
                                  generated_at=NOV).to_json()
    finally:
        con.execute("DELETE FROM stg_grid_implausible")
    assert j["intensity_sources"][0]["implausible_hours"] == 1
    (flag,) = [f for f in j["data_quality"]["flags"] if f["flag"] == "intensity_implausible"]
    assert flag["affected"] == 1 and "1 zone-hour(s) used an intensity" in flag["detail"]


def test_training_run_disclosure_traceable_to_facts(fleet):
    cfg, con, _ = fleet
    d = disclosure_from_store(con, "training_run", "llm-v1", {"namespace": "train-*"}, OCT, NOV,
                              generated_at=NOV)
    j = d.to_json()
    where = "namespace GLOB 'train-*'"
    # 4 h x (GPU, CPU and overhead workload rows): namespaces come from the workload facts only
    assert j["data_quality"]["rows"] == direct(con, "count(*)", where) == 12
    assert j["energy"]["it_kwh"] == pytest.approx(direct(con, "sum(it_kwh)", where)) == pytest.approx(4.8)
    assert j["energy"]["it_kwh_measured"] == pytest.approx(4.0)
    # facility: 3 h x 1.2 kWh x 1.5 + 1 h x 1.2 kWh x 1.2 (metered hour) = 6.84 kWh
    assert j["energy"]["facility_kwh"] == pytest.approx(6.84)
    assert j["energy"]["pue_basis_facility_kwh"] == {"default": pytest.approx(5.4), "meter_hour": pytest.approx(1.44)}
    # location: 1.8 x 200 + 1.44 x 300 + 1.8 x 100 + 1.8 x 400 = 1,692 g
    assert j["emissions_kg_co2e"]["scope2_location_based"] == pytest.approx(1.692)
    assert j["emissions_kg_co2e"]["scope2_market_based"] == pytest.approx(6.84 * 0.4)  # residual mix 400 g
    # embodied: 8 GPU-hours x 164 kg / (4 x 8760 h)
    assert j["emissions_kg_co2e"]["scope3_embodied"] == pytest.approx(8 * 164 / 35040, rel=1e-6)
    assert j["water_liters"] == {"onsite": pytest.approx(1.8 * 4.8), "offsite": pytest.approx(3.0 * 6.84)}
    assert j["energy"]["gpu_hours"] == 8
    flags = {f["flag"] for f in j["data_quality"]["flags"]}
    assert flags == {"intensity_filled", "pue_default"}
    assert j["intensity_sources"] == [{"zone": "CISO", "signal": "average", "source": "eia930", "hours": 4,
                                       "filled_hours": 1, "fill_rules": ["linear"], "implausible_hours": 0}]
    q = j["provenance"]["queries"]
    assert q[0]["file"] == "sql/queries/disclosure/select_device.sql" and q[0]["rows"] == 12
    assert q[0]["params"]["namespace"] == "train-*" and q[0]["params"]["start"] == "2026-10-01T00:00:00Z"
    assert {x["file"] for x in q[1:]} == {"sql/queries/disclosure/summary.sql", "sql/queries/disclosure/pue_basis.sql",
                                          "sql/queries/disclosure/sites.sql",
                                          "sql/queries/disclosure/intensity_sources.sql"}
    for x in q:
        assert (REPO / x["file"]).is_file()


def test_time_range_and_labels_narrow_the_selection(fleet):
    _, con, _ = fleet
    d = disclosure_from_store(con, "training_run", "x", {"namespace": "train-*", "node": "a-*"},
                              datetime(2026, 10, 5, 1, tzinfo=UTC), datetime(2026, 10, 5, 3, tzinfo=UTC))
    assert d.inp.rows == 6 and d.inp.it_kwh == pytest.approx(2.4)
    d = disclosure_from_store(con, "training_run", "x", {"gpu_model": "*H100*", "node": "a-*"},
                              datetime(2026, 10, 5, 1, tzinfo=UTC), datetime(2026, 10, 5, 3, tzinfo=UTC))
    assert d.inp.rows == 4 and d.inp.it_kwh == pytest.approx(2.0)
    with pytest.raises(DisclosureError, match="not both"):
        disclosure_from_store(con, "training_run", "x", {"team": "ml", "gpu_model": "*H100*"}, OCT, NOV)
    none = disclosure_from_store(con, "training_run", "x", {"team": "nobody"}, OCT, NOV)
    assert none.inp.rows == 0 and [f["flag"] for f in none.flags] == ["no_data"]
    with pytest.raises(DisclosureError, match="not available"):
        disclosure_from_store(con, "training_run", "x", {"model": "m"}, OCT, NOV)


def test_served_model_disclosure_shares_node_hour_figures(fleet):
    _, con, _ = fleet
    j = disclosure_from_store(con, "served_model", "llama-3-70b", {"model": "llama-3-70b"}, OCT, NOV).to_json()
    assert j["data_quality"]["rows"] == 8
    assert j["energy"]["it_kwh"] == pytest.approx(1.2) and j["energy"]["facility_kwh"] == pytest.approx(1.32)
    assert j["energy"]["tokens"] == 6000 and j["energy"]["wh_per_token"] == pytest.approx(0.22)
    assert j["energy"]["measured_share"] == pytest.approx(1.0)
    assert j["emissions_kg_co2e"]["scope2_location_based"] == pytest.approx(1.32 * 20 / 1000)
    # share of the node-hour = 0.33 / 0.44 facility kWh; node embodied 164 kg / 35,040 h per GPU-hour
    assert j["emissions_kg_co2e"]["scope3_embodied"] == pytest.approx(4 * 0.75 * 164 / 35040, rel=1e-6)
    assert j["water_liters"]["onsite"] == pytest.approx(0.5 * 1.2)
    assert "residual_mix_missing" in {f["flag"] for f in j["data_quality"]["flags"]}
    # prompt tokens by source over the same selection: 1,000 computed + 3,000 cached per hour, 4 hours
    assert j["energy"]["prompt_tokens"] == {"computed": 4000, "cached": 12000, "transferred": 0, "unsplit": 0}
    assert j["energy"]["cache_hit_ratio"] == 0.75
    prompt_q = [q for q in j["provenance"]["queries"] if q["file"].endswith("prompt_tokens.sql")]
    assert prompt_q[0]["rows"] == 4 and (REPO / prompt_q[0]["file"]).is_file()
    assert disclosure_from_store(con, "served_model", "x", {"model": "other"}, OCT, NOV).inp.prompt_tokens == {}


def test_disclose_cli_writes_markdown_and_json(tmp_path, capsys):
    (tmp_path / "facility.yaml").write_text(FACILITY)
    _, con = build(str(tmp_path / "cli.duckdb"), tmp_path / "facility.yaml")
    con.close()
    out = tmp_path / "card"
    rc = main(["disclose", "--db", str(tmp_path / "cli.duckdb"), "--kind", "training_run", "--name", "llm-v1",
               "--label", "namespace=train-*", "--from", "2026-10", "--to", "2026-11", "--format", "both",
               "--out", str(out), "--flops", "1e21"])
    assert rc == 0
    md = (tmp_path / "card.md").read_text()
    j = json.loads((tmp_path / "card.json").read_text())
    assert "## Environmental impact" in md and "| Facility energy (x PUE 1.425) | 6.840 kWh |" in md
    assert j["eu_ai_act_article_53"]["computational_resources"]["floating_point_operations"] == 1e21
    assert main(["disclose", "--db", str(tmp_path / "missing.duckdb"), "--kind", "training_run", "--name", "x",
                 "--from", "2026-10", "--to", "2026-11"]) == 2
    assert "no database" in capsys.readouterr().err
    assert main(["disclose", "--db", str(tmp_path / "cli.duckdb"), "--kind", "training_run", "--name", "x",
                 "--from", "last week", "--to", "2026-11"]) == 2
    assert "--from: not a date" in capsys.readouterr().err
    assert main(["disclose", "--db", str(tmp_path / "cli.duckdb"), "--kind", "training_run", "--name", "x",
                 "--from", "2026-11", "--to", "2026-10"]) == 2
    assert "period end must be after its start" in capsys.readouterr().err


def test_budget_burn_from_rollups(fleet):
    _, con, _ = fleet
    burns = {b.scope_owner: b for b in budget_burn_from_store(con)}
    assert set(burns) == {"team:ml", "model:llama-3-70b", "site:b", "team:idle"}
    ml = burns["team:ml"]
    # location Scope 2 + Scope 1 + embodied + upstream of team ml = 1.692 + 0 + 8 x 164/35,040 + 0 kg
    assert ml.used_kg == pytest.approx(1.692 + 8 * 164 / 35040, rel=1e-6)
    assert ml.used_ratio is not None and ml.used_ratio > 1 and ml.rollup_rows == 1
    assert burns["model:llama-3-70b"].used_kg == pytest.approx(0.0264)
    assert burns["team:idle"].used_kg == 0 and burns["team:idle"].rollup_rows == 0
    assert ml.projected_kg(datetime(2026, 10, 16, 12, tzinfo=UTC)) == pytest.approx(ml.used_kg * 2)
    assert ml.projected_kg(NOV) == ml.used_kg
    samples = catalog_samples([ml])
    assert samples[0] == (catalog.CARBON_BUDGET.series, {"scope_owner": "team:ml", "period": "2026-10"}, 1000.0)
    assert samples[1][0] == catalog.CARBON_BUDGET_USED.series
    assert samples[1][2] == pytest.approx(ml.used_kg * 1000)
    assert set(samples[0][1]) == set(catalog.CARBON_BUDGET.labels)


def test_shift_analysis_from_facts(fleet):
    cfg, con, _ = fleet
    rows = energy_rows_from_store(con, OCT, NOV)
    factor = factor_from_store(con, cfg, OCT, NOV)
    flex = parse_flexible([{"namespace": "train-*", "window_hours": 24, "sites": ["a", "b"]}])
    [r] = shift_analysis(rows, flex, factor, OCT, NOV)
    assert r.actual_kg == pytest.approx(1.692)
    assert r.time_shift_kg == pytest.approx(1.692)  # it already ran in every hour with intensity, at peak
    assert r.best_site == "b" and r.site_shift_kg == pytest.approx(4.8 * 1.1 * 20 / 1000)
