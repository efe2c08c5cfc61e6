"""Disclosures from a plain input record: figures, flags, JSON shape and Markdown."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from wattfleet.aggregator.outputs.disclosure import DisclosureError, DisclosureInput, build_disclosure

UTC = timezone.utc
T0, T1 = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)


def record(**kw) -> DisclosureInput:
    base: dict[str, Any] = dict(
        kind="training_run", name="llm-7b-v2", period_start=T0, period_end=T1, selector={"namespace": "train-*"},
        it_kwh=1000.0, it_kwh_measured=900.0, facility_kwh=1250.0, scope1_g=2_000.0,
        scope2_location_g=500_000.0, scope2_market_g=100_000.0, scope3_embodied_g=30_000.0,
        scope3_upstream_g=43_750.0, water_onsite_l=1800.0, water_offsite_l=3875.0, cfe_kwh=625.0,
        gpu_hours=640.0, first_hour=datetime(2026, 10, 3, tzinfo=UTC), last_hour=datetime(2026, 10, 5, 23, tzinfo=UTC),
        pue_basis_kwh={"meter_period": 1250.0}, rows=2000,
        sites=[{"site": "sfo1", "zone": "CISO", "it_kwh": 1000.0, "facility_kwh": 1250.0}],
        intensity_sources=[{"zone": "CISO", "signal": "average", "source": "eia930", "hours": 72,
                            "filled_hours": 0, "fill_rules": None}],
        estimates={"flops": 8.4e22},
        provenance=[{"file": "sql/disclosure_select_device.sql", "params": {}, "rows": 2000}])
    base.update(kw)
    return DisclosureInput(**base)


def test_figures_and_regulatory_views():
    d = build_disclosure(record(), generated_at=T1)
    j = json.loads(d.to_json_text())
    assert j["schema"] == "wattfleet.disclosure/v1"
    assert j["energy"]["pue_effective"] == pytest.approx(1.25)
    assert j["energy"]["measured_share"] == pytest.approx(0.9)
    assert j["energy"]["it_kwh_estimated"] == pytest.approx(100.0)
    assert j["energy"]["cfe_score"] == pytest.approx(0.5)
    em = j["emissions_kg_co2e"]
    assert em["scope2_location_based"] == pytest.approx(500.0) and em["scope2_market_based"] == pytest.approx(100.0)
    assert em["lifecycle_location_based"] == pytest.approx(2 + 500 + 30 + 43.75)
    assert em["lifecycle_market_based"] == pytest.approx(2 + 100 + 30 + 43.75)
    art = j["eu_ai_act_article_53"]
    assert art["energy_consumption_kwh"] == pytest.approx(1250.0)
    assert art["energy_consumption_known_or_estimated"] == "known in part, estimated in part"
    assert art["computational_resources"] == {"gpu_hours": 640.0, "floating_point_operations": 8.4e22}
    assert art["training_time"]["hours"] == pytest.approx(72.0)
    csrd = j["csrd_esrs"]
    assert csrd["E1-5_energy_consumption_mwh"] == pytest.approx(1.25)
    assert csrd["E1-6_gross_emissions_tco2e"]["scope2_location_based"] == pytest.approx(0.5)
    assert csrd["E1-6_gross_emissions_tco2e"]["scope2_market_based"] == pytest.approx(0.1)
    assert csrd["E3-4_water_consumption_m3"] == pytest.approx(1.8)
    assert j["provenance"]["queries"][0]["rows"] == 2000
    assert j["data_quality"]["flags"] == []  # 10% estimated is under the flag threshold


def test_markdown_model_card_section():
    md = build_disclosure(record(), generated_at=T1).to_markdown()
    assert md.startswith("## Environmental impact")
    assert "Training run **llm-7b-v2**" in md and "namespace=train-*" in md
    assert "| Scope 2, location-based | 500.000 kgCO2e |" in md
    assert "| Scope 2, market-based | 100.000 kgCO2e |" in md
    assert "| of which measured | 900.000 kWh (90.0%) |" in md
    assert "CISO average from eia930" in md
    assert "Data quality: no flags." in md
    assert "Source: sql/disclosure_select_device.sql (2000 rows)." in md


def test_quality_flags():
    d = build_disclosure(record(it_kwh_measured=500.0, filled_intensity_kwh=12.5, missing_intensity_rows=3,
                                unmapped_site_rows=2, residual_mix_missing_rows=7,
                                pue_basis_kwh={"default": 1000.0, "meter_period": 250.0},
                                scope3_embodied_g=0.0))
    flags = {f["flag"]: f for f in d.flags}
    assert set(flags) == {"estimated_energy", "intensity_filled", "intensity_missing", "site_unmapped",
                          "residual_mix_missing", "pue_default", "embodied_not_configured"}
    assert flags["estimated_energy"]["affected"] == pytest.approx(500.0)
    assert flags["pue_default"]["affected"] == pytest.approx(1000.0)
    md = d.to_markdown()
    assert "- **intensity_missing**: 3 rows have no grid intensity" in md


def test_no_rows_is_flagged_not_hidden():
    d = build_disclosure(DisclosureInput("served_model", "m", T0, T1))
    assert [f["flag"] for f in d.flags] == ["no_data"]
    j = d.to_json()
    assert j["measurement_method"] == "estimated" and j["energy"]["pue_effective"] is None
    assert j["energy"]["wh_per_token"] is None and j["eu_ai_act_article_53"]["lifecycle_phase"] == "inference"


def test_served_model_per_token():
    d = build_disclosure(record(kind="served_model", tokens=1_000_000.0, it_kwh_measured=1000.0))
    j = d.to_json()
    assert j["energy"]["wh_per_token"] == pytest.approx(1.25)
    assert j["eu_ai_act_article_53"]["training_time"] is None
    assert j["measurement_method"] == "measured"
    assert "| Tokens | 1,000,000 |" in d.to_markdown()


def test_served_model_prompt_tokens_by_source():
    """Issue 14: computed, cached, transferred and unsplit prompt tokens; unsplit ones are flagged."""
    split = build_disclosure(record(kind="served_model", tokens=1e6, it_kwh_measured=1000.0, prompt_split_node_hours=10,
                                    prompt_tokens={"computed": 2e5, "cached": 7e5, "transferred": 1e5,
                                                   "unsplit": 0.0}))
    j = split.to_json()
    assert j["energy"]["prompt_tokens"]["cached"] == 7e5 and j["energy"]["cache_hit_ratio"] == pytest.approx(0.7)
    assert "prompt_tokens_not_split" not in {f["flag"] for f in split.flags}
    md = split.to_markdown()
    assert "| Prompt tokens computed / cached / transferred / not split by engine | 200,000 / 700,000 / " \
           "100,000 / 0 |" in md and "| Prefix-cache hit ratio | 70.0% |" in md
    unsplit = build_disclosure(record(kind="served_model", tokens=1e6, prompt_unsplit_node_hours=4,
                                      prompt_tokens={"computed": 0.0, "cached": 0.0, "transferred": 0.0,
                                                     "unsplit": 5e5}))
    assert unsplit.to_json()["energy"]["cache_hit_ratio"] is None
    (flag,) = [f for f in unsplit.flags if f["flag"] == "prompt_tokens_not_split"]
    assert flag["affected"] == 5e5 and "500,000 prompt tokens" in flag["detail"]
    assert "| Prefix-cache hit ratio | n/a |" in unsplit.to_markdown()


def test_bad_kind_and_period():
    with pytest.raises(DisclosureError, match="kind"):
        build_disclosure(record(kind="fine_tune"))
    with pytest.raises(DisclosureError, match="after"):
        build_disclosure(record(period_end=T0))
