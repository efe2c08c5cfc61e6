"""docs/accounting.md's worked examples, recomputed through the SQL formula macros (sql/macros.sql).

The macros are what sql/facts/ uses, so these tests check the numbers the
reports will print, not a Python re-implementation of them.
"""

from __future__ import annotations

import re

import pytest

from wattfleet import sql
from wattfleet.aggregator.store.connection import open_store


@pytest.fixture(scope="module")
def con():
    c = open_store(":memory:")
    yield c
    c.close()


def q(con, expr: str, *params):
    value = con.execute(f"SELECT {expr}", list(params)).fetchone()[0]
    return None if value is None else float(value)


def test_inference_example_66_grams(con):
    # 500 tokens x 0.3 Wh/token x PUE 1.1 x 400 g/kWh / 1000 = 66 gCO2
    it_kwh = 500 * 0.3 / 1000
    assert q(con, "scope2_location_g(facility_kwh(?, 1.1), 400)", it_kwh) == pytest.approx(66.0)


def test_job_example_8_1_kg(con):
    # 10 h x 4 GPUs x 0.3 kW = 12 kWh; x PUE 1.5 = 18 kWh; x 450 g/kWh = 8.1 kg
    assert q(con, "facility_kwh(10 * 4 * 0.3, 1.5)") == pytest.approx(18.0)
    assert q(con, "scope2_location_g(facility_kwh(10 * 4 * 0.3, 1.5), 450) / 1000") == pytest.approx(8.1)


def test_pue_ratio_example(con):
    assert q(con, "pue_ratio(6.3, 4.2)") == pytest.approx(1.5)


def test_pue_retrofit_example(con):
    # 2 MW IT, PUE 1.58 -> 1.10 saves 0.96 MW, 8,409.6 MWh/yr
    saved_mw = q(con, "facility_kwh(2, 1.58) - facility_kwh(2, 1.10)")
    assert saved_mw == pytest.approx(0.96)
    assert saved_mw * 8760 == pytest.approx(8409.6)


def test_embodied_share_example(con):
    # 8 x 164 kg = 1,312 kg over 3 years (26,280 h) = 0.050 kg/h; a 10 h job carries 0.5 kg
    assert 8 * 164 == 1312
    per_hour = q(con, "embodied_share(1312, 1, 3)")
    assert round(per_hour, 3) == 0.050
    assert round(q(con, "embodied_share(1312, 10, 3)"), 1) == 0.5
    assert q(con, "embodied_share(1312, 26280, 3)") == pytest.approx(1312)


def test_region_example(con):
    # 13,246.5 kWh at 429 g/kWh = 5,682.7 kg; at 20 g/kWh = 264.9 kg (21.5x)
    high = q(con, "scope2_location_g(13246.5, 429) / 1000")
    low = q(con, "scope2_location_g(13246.5, 20) / 1000")
    assert round(high, 1) == 5682.7
    assert round(low, 1) == 264.9
    assert high / low == pytest.approx(429 / 20)  # 21.45, printed rounded half-up as 21.5
    assert f"{high / low + 1e-9:.1f}" == "21.5"


def test_water_example(con):
    # 1.8 L/kWh x 10,000 MWh = 18 million litres
    assert q(con, "water_onsite_l(1.8, 10000 * 1000)") == pytest.approx(18e6)


def test_water_offsite_uses_facility_energy(con):
    assert q(con, "water_offsite_l(facility_kwh(100, 1.5), 2.0)") == pytest.approx(300.0)


def test_scope1(con):
    assert q(con, "scope1_diesel_kg(1000)") == pytest.approx(2680.0)
    assert q(con, "scope1_diesel_kg(1000, 2.7)") == pytest.approx(2700.0)
    assert q(con, "scope1_refrigerant_kg(2, 2088)") == pytest.approx(4176.0)


def test_scope2_market(con):
    # 100 kWh, 60% covered by a zero-carbon PPA, rest at 450 g/kWh residual
    assert q(con, "scope2_market_g(100, 0.6, 0, 450)") == pytest.approx(18000.0)
    assert q(con, "scope2_market_g(100, 0, 0, 450)") == pytest.approx(45000.0)
    assert q(con, "scope2_market_g(100, 1, 0, 450)") == 0


def test_cfe_score(con):
    assert q(con, "cfe_score(100, 40)") == pytest.approx(0.4)
    assert q(con, "cfe_score(100, 400)") == pytest.approx(1.0)  # surplus does not count
    assert q(con, "cfe_score(0, 5)") is None


def test_annual_rec_match_can_hide_poor_hourly_cfe(con):
    # 24 h of 10 kWh; solar supplies 40 kWh in each of 6 midday hours = 240 kWh = 100% annual match.
    hourly = [q(con, "cfe_score(10, ?)", 40.0 if 9 <= h < 15 else 0.0) for h in range(24)]
    assert sum(hourly) / 24 == pytest.approx(0.25)


def test_upstream_and_sci(con):
    assert q(con, "scope3_upstream_g(facility_kwh(10, 1.2), 35)") == pytest.approx(420.0)
    # SCI: (E x I + M) per R; 0.5 kWh x 400 g + 10 g embodied over 1000 units of 1k tokens
    assert q(con, "sci(0.5, 400, 10, 1000)") == pytest.approx(0.21)


def test_upstream_factor_never_adds_the_flat_factor_to_a_lifecycle_intensity(con):
    """docs/accounting.md 5.5: an hour split by its mix takes its own upstream part instead of the flat factor;
    an unsplit life-cycle hour takes none (its upstream is inside Scope 2); a direct hour the flat factor."""
    assert q(con, "upstream_grams_per_kwh(64.667, 'direct', 35)") == pytest.approx(64.667)
    assert q(con, "upstream_grams_per_kwh(NULL, 'lifecycle', 35)") == 0.0
    assert q(con, "upstream_grams_per_kwh(NULL, 'direct', 35)") == 35.0
    assert q(con, "upstream_grams_per_kwh(NULL, NULL, 35)") == 35.0  # no stated basis (before schema 015)
    # CISO's first 2022 hour, 10 kWh: Scope 2 on the direct part + Category 3 = 10 kWh x the file's avg_CI
    s2 = q(con, "scope2_location_g(10, 2534984 / 16082)")
    s3 = q(con, "scope3_upstream_g(10, upstream_grams_per_kwh(222.29592090536002 - 2534984 / 16082, 'direct', 35))")
    assert s2 + s3 == pytest.approx(10 * 222.29592090536002, rel=1e-12)


def test_joules_to_kwh(con):
    assert q(con, "joules_to_kwh(3600000)") == 1.0


def _sql_files() -> dict[str, str]:
    """Every shipped SQL file by its path in the package (``facts/040_facility.sql``, ``schema/...``)."""
    return {path: sql.file_text(path) for path in sql.files()}


def test_pue_applied_exactly_once_in_sql():
    """PUE multiplies IT energy only through facility_kwh(), and only on IT-energy inputs."""
    files = _sql_files()
    uses = []
    for name, text in files.items():
        body = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
        for m in re.finditer(r"facility_kwh\(([^,()]*(?:\([^()]*\))?[^,()]*),", body):
            uses.append((name, m.group(1).strip()))
        # No other multiplication by a PUE value anywhere.
        if name != "macros.sql":
            assert not re.search(r"\*\s*\w*\.?pue\b", body), f"{name} multiplies by pue outside facility_kwh()"
    assert uses, "facility_kwh() is never used"
    for name, arg in uses:
        assert name.startswith("facts/") or name == "macros.sql", (name, arg)
        assert "facility" not in arg, f"{name}: facility_kwh() applied to an already facility-level {arg!r}"
