"""Market-based Scope 2 with an instrument larger than the consumption it covers (docs/accounting.md 6.2)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from fixtures.agg.facts_store import HOUR, add_energy, add_intensity, store_from_config
from wattfleet.aggregator.store.rebuild import rebuild_month

MARCH, APRIL = datetime(2026, 3, 10), datetime(2026, 4, 10)
HOURS, PUE, GRID, RESIDUAL, INSTRUMENT_G = 24, 1.2, 300.0, 400.0, 10.0

CONFIG = f"""\
version: 1
sites:
  - name: a
    zone: CISO
    grid: {{source: static}}
    pue: {PUE}
    wue_liters_per_kwh: 1.0
    residual_mix_grams_per_kwh: {RESIDUAL}
    nodes: ["a-*"]
  - name: b
    zone: CISO
    grid: {{source: static}}
    pue: {PUE}
    wue_liters_per_kwh: 1.0
    residual_mix_grams_per_kwh: {RESIDUAL}
    nodes: ["b-*"]
instruments:
  - {{name: huge, type: rec, {{scope}}, start: 2026-03-01, end: 2026-04-01, mwh: 1000,
     grams_per_kwh: {INSTRUMENT_G}}}
"""


@pytest.mark.parametrize("scope", ["site: a", "market: CISO"])
def test_an_instrument_larger_than_consumption_is_capped_at_it(tmp_path, scope):
    """Guards the cap (``least(1.0, consumption / allocated)``) in sql/facts/035_instrument_month.sql.

    1,000 MWh against a few kWh: the covered share is 1, never more, so the covered sites' market-based
    Scope 2 is their energy at the instrument's factor (not negative); the surplus does not lower the
    other site's figure (a site instrument) nor the next month's (no banking).
    """
    con, _ = store_from_config(tmp_path, CONFIG.replace("{scope}", scope))
    for start in (MARCH, APRIL):
        add_intensity(con, "CISO", start, HOURS, GRID)
        for h in range(HOURS):
            add_energy(con, start + h * HOUR, "a-1", "0", 1 * 3.6e6)  # 1 kWh per hour
            add_energy(con, start + h * HOUR, "b-1", "0", 2 * 3.6e6)
    rebuild_month(con, date(2026, 3, 1))
    rebuild_month(con, date(2026, 4, 1))
    rows = con.execute("SELECT site, hour_utc, facility_kwh, scope2_market_g FROM fact_device_hour "
                       "WHERE component = 'gpu' ORDER BY ALL").fetchall()
    assert len(rows) == 4 * HOURS
    covered = {"a", "b"} if scope.startswith("market") else {"a"}
    for site, hour, facility_kwh, market_g in rows:
        assert market_g >= 0, (site, hour)
        march = hour < datetime(2026, 4, 1)
        factor = INSTRUMENT_G if march and site in covered else RESIDUAL
        assert market_g == pytest.approx(facility_kwh * factor, rel=1e-12), (site, hour)
    totals = dict(con.execute("SELECT site, sum(scope2_market_g) FROM fact_device_hour "
                              "WHERE hour_utc < '2026-04-01' GROUP BY site").fetchall())
    assert totals["a"] == pytest.approx(HOURS * 1 * PUE * INSTRUMENT_G)
    b_factor = INSTRUMENT_G if "b" in covered else RESIDUAL
    assert totals["b"] == pytest.approx(HOURS * 2 * PUE * b_factor)
