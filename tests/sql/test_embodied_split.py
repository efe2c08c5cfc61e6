"""Embodied carbon split across fact rows (docs/accounting.md 9.1): a month's rows add up to the amortised total."""

from __future__ import annotations

from datetime import date

import pytest

from fixtures.agg.facts_store import store_from_config
from wattfleet.aggregator.store.rebuild import rebuild_month
from wattfleet.aggregator.store.rows import one_row

FEB_HOURS = 28 * 24  # February 2026
GPU_KG, GPU_LIFE, NODE_KG, NODE_LIFE = 164.0, 4.0, 1000.0, 5.0

CONFIG = f"""\
version: 1
sites:
  - name: s
    zone: CISO
    grid: {{source: static}}
    pue: 1.2
    wue_liters_per_kwh: 1.0
    nodes: ["n-*"]
embodied:
  - {{gpu_model: "*H100*", kg_co2e: {GPU_KG}, life_years: {GPU_LIFE}}}
  - {{node: "n-*", kg_co2e: {NODE_KG}, life_years: {NODE_LIFE}}}
"""

# Staging rows of every hour of February: (node, device, component, rows per hour as SQL of the hour h).
# Several rows for one GPU-hour happen when namespaces (or teams) share it; their number may vary by hour.
LAYOUTS = {
    "one row per device": [("n-1", "0", "gpu", "1"), ("n-1", "1", "gpu", "1"), ("n-2", "0", "gpu", "1")],
    "shared GPUs": [("n-1", "0", "gpu", "2"), ("n-1", "1", "gpu", "1 + h % 3"), ("n-2", "0", "gpu", "3"),
                    ("n-1", "0", "cpu", "2")],
    "one GPU, many rows": [("n-1", "0", "gpu", "1 + h % 4"), ("n-2", "0", "cpu", "1")],
}


def _fill(con, layout: list[tuple[str, str, str, str]]) -> None:
    for node, device, component, rows in layout:
        con.execute(f"""
            INSERT INTO stg_energy_hourly
            SELECT TIMESTAMP '2026-02-01' + INTERVAL (h) HOUR, ?, 'c', '', ?, ?,
                   CASE WHEN ? = 'gpu' THEN 'gpu' ELSE 'package' END,
                   CASE WHEN ? = 'gpu' THEN 'NVIDIA H100 80GB HBM3' END, 'measured',
                   1e6 / ({rows}), 'prometheus'
              FROM range({FEB_HOURS}) t(h), range(4) r(k) WHERE k < {rows}""",
                    [node, device, component, component, component])


@pytest.mark.parametrize("layout", LAYOUTS, ids=list(LAYOUTS))
def test_month_of_embodied_rows_is_the_amortised_total(tmp_path, layout):
    """Guards the per-row split in sql/facts/slice/040_device_hour.sql (``/ count(*) OVER (...)`` for GPUs, the node's
    share on its one overhead row): however many rows a GPU-hour has, the month's rows add up to
    kg x hours in the month / (life x 8760) per reporting GPU and node, no more and no less."""
    con, _ = store_from_config(tmp_path, CONFIG)
    _fill(con, LAYOUTS[layout])
    rebuild_month(con, date(2026, 2, 1))
    gpus = {(n, d) for n, d, c, _ in LAYOUTS[layout] if c == "gpu"}
    nodes = {n for n, *_ in LAYOUTS[layout]}
    want = (len(gpus) * GPU_KG * 1000 * FEB_HOURS / (GPU_LIFE * 8760)
            + len(nodes) * NODE_KG * 1000 * FEB_HOURS / (NODE_LIFE * 8760))
    got, cpu = one_row(con, "SELECT sum(scope3_embodied_g), sum(scope3_embodied_g) FILTER (WHERE component = 'cpu') "
                            "FROM fact_device_hour")
    assert got == pytest.approx(want, rel=1e-12)
    assert not cpu  # CPUs carry none of their own: the node's share is on its overhead row
    per_gpu = con.execute("SELECT node, device, sum(scope3_embodied_g) FROM fact_device_hour WHERE component = 'gpu' "
                          "GROUP BY ALL").fetchall()
    for node, device, grams in per_gpu:  # each GPU gets its own month, whatever its number of rows
        assert grams == pytest.approx(GPU_KG * 1000 * FEB_HOURS / (GPU_LIFE * 8760), rel=1e-12), (node, device)
