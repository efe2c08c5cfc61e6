"""PUE precedence from the config file to the facts: hourly meter > monthly meter > default (docs/accounting.md 4)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from fixtures.agg.facts_store import add_energy, add_intensity, store_from_config
from wattfleet.aggregator.planning.estimators import site_pue_at
from wattfleet.aggregator.store.rebuild import rebuild_month

CONFIG = """\
version: 1
sites:
  - name: s
    zone: CISO
    grid: {source: static}
    pue:
      default: 1.5
      meter:
        - {month: 2026-03, total_kwh: 130, it_kwh: 100}
        - {hour: '2026-03-10T05:00Z', total_kwh: 110, it_kwh: 100}
    wue_liters_per_kwh: 1.0
    nodes: ["n-*"]
"""

WANT = {  # hour -> (PUE, basis)
    datetime(2026, 3, 10, 4): (1.3, "meter_period"),
    datetime(2026, 3, 10, 5): (1.1, "meter_hour"),
    datetime(2026, 3, 10, 6): (1.3, "meter_period"),
    datetime(2026, 3, 31, 23): (1.3, "meter_period"),
    datetime(2026, 4, 1, 0): (1.5, "default"),
    datetime(2026, 2, 28, 23): (1.5, "default"),
}


def test_hourly_reading_inside_a_metered_month_wins_its_hour(tmp_path):
    """The config accepts an hourly reading inside a metered month (config/meters.py); the facts
    (sql/facts/030_site_hour_pue.sql) and estimators.site_pue_at then agree hour by hour."""
    con, cfg = store_from_config(tmp_path, CONFIG)
    for hour in WANT:
        add_intensity(con, "CISO", hour, 1, 300.0)
        add_energy(con, hour, "n-1", "0", 3.6e6)  # 1 kWh
    for month in (date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)):
        rebuild_month(con, month)
    got = {h: (pue, basis, fac) for h, pue, basis, fac in con.execute(
        "SELECT hour_utc, pue, pue_source, facility_kwh FROM fact_device_hour WHERE component = 'gpu'").fetchall()}
    assert set(got) == set(WANT)
    for hour, (pue, basis) in WANT.items():
        assert got[hour][:2] == (pytest.approx(pue), basis), hour
        assert got[hour][2] == pytest.approx(pue), hour  # 1 kWh of IT energy x the hour's PUE
        assert site_pue_at(cfg.sites["s"], hour.replace(tzinfo=timezone.utc)) == (pytest.approx(pue), basis), hour
