"""Planning estimators on the worked examples, each recomputed by hand (docs/accounting.md, section 17).

Where a source text's printed output is wrong, the comment gives the printed value
and the test the recomputed one.
"""

from __future__ import annotations

import pytest

from wattfleet.aggregator.planning.estimators import (
    EstimateError,
    compare_dense_moe,
    compare_placements,
    efficiency_metrics,
    embodied_share,
    emissions_kg,
    estimate_training,
    estimate_training_from_params,
    facility_kwh,
    inference_break_even,
    inference_grams,
    job_energy_kwh,
    kwh_per_request_from_power,
    pue_ratio,
    pue_retrofit_savings,
    training_flops,
    water_liters,
)

H100_PEAK = 989e12  # BF16 dense FLOP/s


def test_training_70b_first_principles():
    # 6 x 70e9 x 1.4e12 = 5.88e23 FLOPs; / (989e12 x 0.40 x 3600) = 412,875 GPU-h (source text prints 414,141.4);
    # / 2,048 = 201.6 h (prints 202.2); x 700 W = 289,012 kWh (prints 289,898,989.9: 1000x off);
    # x 1.1 = 317,914 kWh; x 400 g/kWh = 127,165 kg = 127.2 t (prints 127.6 t).
    assert training_flops(70e9, 1.4e12) == pytest.approx(5.88e23)
    e = estimate_training(5.88e23, H100_PEAK, 0.40, 700, 2048, 1.1, 400)
    assert e.gpu_hours == pytest.approx(412_874.96, rel=1e-6)
    assert e.wall_hours == pytest.approx(201.599, rel=1e-5)
    assert e.it_kwh == pytest.approx(289_012.47, rel=1e-6)
    assert e.facility_kwh == pytest.approx(317_913.72, rel=1e-6)
    assert e.operational_kg == pytest.approx(127_165.49, rel=1e-6)
    assert round(e.tonnes, 1) == 127.2
    assert e.method == "estimated" and e.measured == ()


def test_training_takes_measured_energy_and_pue():
    # The fleet measured 250,000 kWh IT and the site's real PUE was 1.25 over the run.
    e = estimate_training(5.88e23, H100_PEAK, 0.40, 700, 2048, 1.1, 400,
                          measured_it_kwh=250_000, measured_pue=1.25)
    assert e.facility_kwh == pytest.approx(312_500)
    assert e.operational_kg == pytest.approx(125_000)
    assert e.measured == ("it_kwh", "pue") and e.method == "measured"
    assert e.wall_hours == pytest.approx(201.599, rel=1e-5)  # time is still the compute model's


def test_llama2_efficiency_metrics():
    # 7B: 400 W x 256 x 480 h = 49,152 kWh x 1.1 = 54,067.2 kWh (source text prints 53,760,000);
    # 21.6 t (prints 21,504 t); 6N = 4.2e10 FLOPs/token; 0.0077 Wh/param (prints 7,680);
    # 2e12 / 54,067.2 = 36,991,004 tokens/kWh (prints 37).
    fac = facility_kwh(job_energy_kwh(480, 256, 400), 1.1)
    assert fac == pytest.approx(54_067.2)
    assert emissions_kg(fac, 400) / 1000 == pytest.approx(21.627, rel=1e-4)
    m = efficiency_metrics(7e9, 2e12, fac)
    assert m.flops_per_token == pytest.approx(4.2e10)
    assert m.wh_per_param == pytest.approx(0.0077239, rel=1e-4)
    assert m.tokens_per_kwh == pytest.approx(36_991_003.8, rel=1e-6)
    # 70B: 400 W x 2,048 x 1,720 h x 1.1 = 1,549,926.4 kWh (prints 985,497,600); 620.0 t (prints 394,199 t).
    fac70 = facility_kwh(job_energy_kwh(1720, 2048, 400), 1.1)
    assert fac70 == pytest.approx(1_549_926.4)
    assert emissions_kg(fac70, 400) / 1000 == pytest.approx(619.97, rel=1e-5)


def test_dense_vs_moe_by_active_parameters():
    # 70B dense vs Mixtral-style 13B active of 47B, 2T tokens: 454,162 vs 84,344 kWh (source text prints 738,636 and
    # 137,175), 181.7 vs 33.7 t; the saving 1 - 13/70 = 81.4% is printed right.
    c = compare_dense_moe(70e9, 13e9, 2e12)
    assert c.dense.facility_kwh == pytest.approx(454_162.45, rel=1e-6)
    assert c.moe.facility_kwh == pytest.approx(84_344.46, rel=1e-6)
    assert c.dense.operational_kg == pytest.approx(181_664.98, rel=1e-6)
    assert c.moe.operational_kg == pytest.approx(33_737.78, rel=1e-6)
    assert c.energy_saving_ratio == pytest.approx(1 - 13 / 70)
    assert round(c.energy_saving_ratio * 100, 1) == 81.4
    # The same through the generic path: FLOPs scale with active params, not total.
    e = estimate_training_from_params(13e9, 2e12, H100_PEAK, 0.40, 700, 1, 1.1, 400)
    assert e.flops == pytest.approx(6 * 13e9 * 2e12)


def test_inference_example_66_grams():
    # 500 tokens x 0.3 Wh/token x PUE 1.1 x 400 g/kWh / 1000 = 66 g
    assert inference_grams(500, 0.3, 1.1, 400) == pytest.approx(66.0)


def test_job_example_8_1_kg():
    # 10 h x 4 GPUs x 0.3 kW = 12 kWh; x 1.5 = 18 kWh; x 450 g/kWh = 8.1 kg
    it = job_energy_kwh(10, 4, 300)
    assert it == pytest.approx(12.0)
    assert facility_kwh(it, 1.5) == pytest.approx(18.0)
    assert emissions_kg(facility_kwh(it, 1.5), 450) == pytest.approx(8.1)


def test_pue_examples():
    assert pue_ratio(6.3, 4.2) == pytest.approx(1.5)
    kw, kwh_yr = pue_retrofit_savings(2000, 1.58, 1.10)
    assert kw == pytest.approx(960)
    assert kwh_yr == pytest.approx(8_409_600)  # 8,409.6 MWh/yr


def test_embodied_share_examples():
    # 8 H100 x 164 kg = 1,312 kg over 3 years (26,280 h) = 0.050 kg/h; a 10 h job carries 0.5 kg.
    s = embodied_share(164, 8, 10, life_years=3)
    assert s.kg_per_hour == pytest.approx(1312 / 26280)
    assert round(s.kg_per_hour, 3) == 0.050
    assert s.kg == pytest.approx(0.4992, abs=1e-4) and round(s.kg, 1) == 0.5
    # Operational for the same job: 8 x 0.7 kW x 10 h = 56 kWh -> 24.0 kg at 429 g; 1.12 kg at 20 g,
    # where embodied becomes 0.5 / (1.12 + 0.5) = 30.8% of the total.
    it = job_energy_kwh(10, 8, 700)
    assert emissions_kg(it, 429) == pytest.approx(24.024)
    clean = emissions_kg(it, 20)
    assert clean == pytest.approx(1.12)
    assert s.kg / (clean + s.kg) == pytest.approx(0.308, abs=1e-3)
    # 150 kg A100, 4 years: 0.103 kg/day; 64 accelerators x 14 days = 92.05 kg.
    a = embodied_share(150, 64, 14 * 24, life_years=4)
    assert a.kg == pytest.approx(92.05, abs=0.01)
    # A month (1/36) of 2,048 H100 on a 3-year cycle: 9.33 t.
    assert embodied_share(164, 2048, 26280 / 36, life_years=3).kg == pytest.approx(9329.8, abs=0.1)


def test_region_example_21_5x():
    # 13,246.5 kWh at 429 g/kWh = 5,682.7 kg; at 20 g/kWh = 264.9 kg (21.5x).
    c = compare_placements(13_246.5, {"us-avg": 429, "quebec": 20}, {"quebec": 0.05})
    assert [o.name for o in c.options] == ["quebec", "us-avg"]
    assert c.options[1].kg == pytest.approx(5682.7, abs=0.05)
    assert c.options[0].kg == pytest.approx(264.93)
    assert c.spread == pytest.approx(21.45)  # 429 / 20; printed as 21.5x (rounded half up)
    assert c.options[0].cost == pytest.approx(662.325) and c.options[1].cost is None
    # Embodied 92.05 kg is 1.6% of the US operational figure and 25.8% of the Quebec total.
    emb = embodied_share(150, 64, 336, 4).kg
    assert emb / c.options[1].kg == pytest.approx(0.0162, abs=5e-4)
    assert emb / (emb + c.options[0].kg) == pytest.approx(0.258, abs=1e-3)


def test_region_ranking_seed():
    # 10,000 GPU-h x 0.7 kW x 1.1 = 7,700 kWh: swedencentral (20 g) 154.0 kg, eu-north-1 (25 g) 192.5 kg,
    # us-west-2 (120 g) 924.0 kg (these printed values are right).
    fac = facility_kwh(job_energy_kwh(10_000, 1, 700), 1.1)
    c = compare_placements(fac, {"swedencentral": 20, "eu-north-1": 25, "us-west-2": 120})
    assert [round(o.kg, 1) for o in c.options] == [154.0, 192.5, 924.0]


def test_lifecycle_napkin_math():
    # 1,971.2 kW IT x 1.12 = 2,207.7 kW x 720 h = 1,589,575.7 kWh x 429 g = 681.9 t; + 9.3 t embodied = 691.3 t
    fac = facility_kwh(1971.2 * 24 * 30, 1.12)
    assert fac == pytest.approx(1_589_575.68)
    op = emissions_kg(fac, 429)
    emb = embodied_share(164, 2048, 720, 3).kg * (26280 / 36) / 720  # the source text's 1/36 of the 3 years
    assert round(op / 1000, 1) == 681.9
    assert round((op + emb) / 1000, 1) == 691.3


def test_inference_break_even_examples():
    # 10 M requests/day x 0.001 kWh = 10,000 kWh/day, x 429 g = 4,290 kg/day; 3,650,000 kWh/yr = 1,565.85 t.
    # A 5.7 t training run is overtaken after 5,700 / 4,290 = 1.33 days (1.33e7 requests).
    b = inference_break_even(5700, kwh_per_request=0.001, grams_per_kwh=429, requests_per_day=10e6)
    assert b.kg_per_request == pytest.approx(0.000429)
    assert b.requests == pytest.approx(5700 / 0.000429)
    assert b.days is not None and round(b.days, 2) == 1.33
    assert 10e6 * 0.001 * 365 * 0.429 == pytest.approx(1_565_850)
    # N_break = C_train / (T_out x e_tok): 200 tokens x 0.3 Wh, PUE 1.1, 400 g -> 26.4 g per request.
    b2 = inference_break_even(127_165.49, tokens_per_request=200, wh_per_token=0.3, pue=1.1, grams_per_kwh=400)
    assert b2.kg_per_request == pytest.approx(0.0264)
    assert b2.requests == pytest.approx(127_165.49 / 0.0264)
    assert b2.days is None and "requests" in b2.serving_dominates_after


def test_training_inference_flip_checkpoint():
    # Training 2,000 GPU-h x 300 W = 600 kWh. Serving: 50 ms x 100 W = 5 J per request, 1 M/day = 1.39 kWh/day.
    # Same grid and PUE for both, so break-even = 600 kWh / 5 J = 432 M requests = 432 days.
    per_req = kwh_per_request_from_power(0.050, 100)
    assert per_req * 3.6e6 == pytest.approx(5.0)
    train_kg = emissions_kg(job_energy_kwh(2000, 1, 300), 400)
    b = inference_break_even(train_kg, kwh_per_request=per_req, grams_per_kwh=400, requests_per_day=1e6)
    assert b.requests == pytest.approx(432e6)
    assert b.days == pytest.approx(432)


def test_water_example():
    # 1.8 L/kWh x 10,000 MWh = 18 million litres
    assert water_liters(1.8, 10_000_000) == pytest.approx(18e6)


@pytest.mark.parametrize("call, match", [
    (lambda: estimate_training(1e20, 989e12, 1.4, 700, 8, 1.1, 400), "mfu"),
    (lambda: estimate_training(1e20, 989e12, 0.4, 700, 8, 0.9, 400), "pue must be >= 1.0"),
    (lambda: estimate_training(1e20, 989e12, 0.4, 700, 0, 1.1, 400), "gpu_count"),
    (lambda: estimate_training(-1, 989e12, 0.4, 700, 8, 1.1, 400), "flops"),
    (lambda: training_flops(float("nan"), 1e12), "active_params"),
    (lambda: pue_ratio(4.0, 4.2), "PUE < 1"),
    (lambda: inference_break_even(10, grams_per_kwh=400), "kwh_per_request"),
    (lambda: embodied_share(164, 8, 10, life_years=0), "life_years"),
    (lambda: estimate_training(1e20, 989e12, 0.4, 700, 8, 1.1, 400, measured_pue=0.95), "pue"),
])
def test_bad_inputs_are_named(call, match):
    with pytest.raises(EstimateError, match=match):
        call()


# --- measured inputs from DuckDB (the fixture fleet of test_disclosure_store.py) -------------------------
@pytest.fixture(scope="module")
def fleet_con(tmp_path_factory):
    from fixtures.agg.disclosure_fleet import FACILITY, build

    d = tmp_path_factory.mktemp("estimators")
    (d / "facility.yaml").write_text(FACILITY)
    _, con = build(str(d / "fleet.duckdb"), d / "facility.yaml")
    yield con
    con.close()


def test_training_estimate_with_measured_energy_and_pue_from_duckdb(fleet_con):
    from datetime import datetime, timezone

    from wattfleet.aggregator.planning.estimators import measured_from_store

    oct_, nov = datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2026, 11, 1, tzinfo=timezone.utc)
    m = measured_from_store(fleet_con, {"namespace": "train-*"}, oct_, nov)
    # facts: 4 h x (2 GPUs x 0.5 + CPU 0.2) = 4.8 kWh IT, 4.0 metered; facility 6.84 kWh (3 h at PUE 1.5, one
    # metered hour at 1.2) -> PUE 1.425; 1,692 g location-based -> 247.37 g/kWh over the run.
    assert (m.rows, m.it_kwh, m.it_kwh_measured) == (12, pytest.approx(4.8), pytest.approx(4.0))
    assert m.facility_kwh == pytest.approx(6.84) and m.pue == pytest.approx(1.425)
    assert m.grams_per_kwh == pytest.approx(1692 / 6.84) and m.operational_kg == pytest.approx(1.692)
    assert m.pue_metered_kwh == pytest.approx(1.44) and m.span_hours == 4 and m.gpu_hours == 8
    assert m.provenance[0]["file"] == "sql/queries/disclosure/select_device.sql" and m.provenance[0]["rows"] == 12
    # The estimator with measured inputs reproduces the accounted footprint exactly.
    e = estimate_training(1e18, H100_PEAK, 0.4, 700, 2, 1.1, 400, measured_it_kwh=m.it_kwh, measured_pue=m.pue)
    assert e.measured == ("it_kwh", "pue") and e.facility_kwh == pytest.approx(6.84)
    assert emissions_kg(e.facility_kwh, m.grams_per_kwh) == pytest.approx(1.692)
    # a site's real PUE: site b has no meter, so its configured 1.1
    assert measured_from_store(fleet_con, {"site": "b"}, oct_, nov).pue == pytest.approx(1.1)
    # Served model: 1.2 kWh IT for 6,000 tokens = 0.2 Wh/token, PUE 1.1, 20 g/kWh. At 500 tokens per request
    # one request is 0.1 kWh x 1.1 x 20 g = 2.2 g, so the measured 1.692 kg training run is overtaken
    # after 1,692 / 2.2 = 769.1 requests.
    s = measured_from_store(fleet_con, {"model": "llama-3-70b"}, oct_, nov, kind="served_model")
    assert s.it_wh_per_token == pytest.approx(0.2) and s.pue == pytest.approx(1.1)
    b = inference_break_even(m.operational_kg, tokens_per_request=500, wh_per_token=s.it_wh_per_token,
                             pue=s.pue, grams_per_kwh=s.grams_per_kwh)
    assert b.kg_per_request == pytest.approx(0.0022) and b.requests == pytest.approx(769.09, abs=0.01)
    with pytest.raises(EstimateError, match="nothing measured"):
        measured_from_store(fleet_con, {"namespace": "nobody"}, oct_, nov)
