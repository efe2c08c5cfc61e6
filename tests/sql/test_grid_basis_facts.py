"""The basis of each hour's grid intensity decides Category 3 in the facts (migration 015, docs/accounting.md 5.5):
an hour split by its mix takes its own upstream part instead of the flat factor, an unsplit life-cycle hour takes
none (its upstream is inside Scope 2 already), a direct hour or one with no stated basis the flat factor."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from fixtures.agg.facts_store import HOUR, add_energy, store_from_config
from wattfleet.aggregator.store.rebuild import rebuild_month

CONFIG = """\
version: 1
defaults: {upstream_grams_per_kwh: 35}
sites:
  - name: s
    zone: CISO
    grid: {source: static, basis: direct}
    pue: 1.25
    wue_liters_per_kwh: 1.0
    nodes: ["n-*"]
"""

T0 = datetime(2026, 5, 4)
# hour offset -> (grams_per_kwh staged, basis row (basis, upstream) or None, expected upstream g/kWh in the facts)
STAGED = {0: (157.6, ("direct", 64.7), 64.7),      # EIA-930 hour split by its mix: 157.6 + 64.7 = avg_CI
          1: (222.3, ("lifecycle", None), 0.0),    # life-cycle, not split: no flat factor on top
          2: (200.0, ("direct", None), 35.0),      # a direct source: the flat factor
          3: (200.0, None, 35.0)}                  # no stated basis (staging from before 015): as before


def test_category3_follows_each_hours_basis_and_never_doubles_a_lifecycle_intensity(tmp_path):
    con, _ = store_from_config(tmp_path, CONFIG)
    for h, (grams, basis, _) in STAGED.items():
        con.execute("INSERT INTO stg_grid_intensity VALUES ('CISO', ?, 'average', ?, NULL, 'test', false, NULL)",
                    [T0 + h * HOUR, grams])
        if basis is not None:
            con.execute("INSERT INTO stg_grid_basis VALUES ('CISO', ?, 'average', ?, ?)", [T0 + h * HOUR, *basis])
        add_energy(con, T0 + h * HOUR, "n-1", "0", 3.6e6)  # 1 kWh IT, 1.25 kWh facility
    rebuild_month(con, date(2026, 5, 1))
    rows = con.execute("SELECT hour_utc, facility_kwh, intensity_basis, scope2_location_g, scope3_upstream_g "
                       "FROM fact_device_hour WHERE component = 'gpu' ORDER BY hour_utc").fetchall()
    assert len(rows) == len(STAGED)
    for hour, kwh, basis, s2, s3 in rows:
        grams, staged, upstream = STAGED[(hour - T0) // HOUR]
        assert kwh == pytest.approx(1.25)
        assert basis == (staged[0] if staged else None)
        assert s2 == pytest.approx(kwh * grams)
        assert s3 == pytest.approx(kwh * upstream)
    # the split hour: Scope 2 + Category 3 = facility kWh x the source's life-cycle intensity, counted once
    assert rows[0][3] + rows[0][4] == pytest.approx(1.25 * (157.6 + 64.7))
