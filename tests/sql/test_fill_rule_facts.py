"""The gap rule that filled an hour's grid intensity travels from staging to the facts (migration 007)."""

from __future__ import annotations

from datetime import date, datetime

from fixtures.agg.facts_store import HOUR, add_energy, store_from_config
from wattfleet.aggregator.store.rebuild import rebuild_month

CONFIG = """\
version: 1
sites:
  - name: s
    zone: CISO
    grid: {source: static}
    pue: 1.2
    wue_liters_per_kwh: 1.0
    nodes: ["n-*"]
"""

T0 = datetime(2026, 5, 4)
# hour offset -> (filled, fill rule as staged)
STAGED = {0: (False, None), 1: (True, "previous_day_same_hour"), 2: (True, "linear"), 3: (True, "static_annual"),
          4: (True, "replay_previous_day"), 5: (False, "linear")}  # 5: a stray rule on an observed row is no fill


def test_facts_say_which_rule_filled_each_hour(tmp_path):
    """Guards intensity_fill_rule in sql/facts/slice/040_device_hour.sql: every row of a filled hour (GPU, CPU and
    overhead line) names the rule; observed hours name none, and the flag and the rule agree."""
    con, _ = store_from_config(tmp_path, CONFIG)
    for h, (filled, rule) in STAGED.items():
        con.execute("INSERT INTO stg_grid_intensity VALUES ('CISO', ?, 'average', 300, NULL, 'test', ?, ?)",
                    [T0 + h * HOUR, filled, rule])
        con.execute("INSERT INTO stg_grid_intensity VALUES ('CISO', ?, 'marginal', 500, NULL, 'test', true, 'other')",
                    [T0 + h * HOUR])  # the marginal signal's fill is not the accounting one
        add_energy(con, T0 + h * HOUR, "n-1", "0", 3.6e6)
        add_energy(con, T0 + h * HOUR, "n-1", "0", 1.8e6, component="cpu")
    rebuild_month(con, date(2026, 5, 1))
    rows = con.execute("SELECT hour_utc, component, intensity_filled, intensity_fill_rule FROM fact_device_hour "
                       "ORDER BY ALL").fetchall()
    assert len(rows) == 3 * len(STAGED)
    for hour, component, filled, rule in rows:
        staged_filled, staged_rule = STAGED[(hour - T0) // HOUR]
        assert filled is staged_filled, (hour, component)
        assert rule == (staged_rule if staged_filled else None), (hour, component)
