"""The device facts run per slice of the month's hours (sql/facts/slice/), and slicing changes no value.

A month's device-hour facts are built a few million energy rows at a time so their joins stay inside
DuckDB's memory limit (store/rebuild.py, docs/scale.md). Every value of a slice's rows depends only on
its own hour and on month-level inputs, and every sum is exact, so the facts and rollups must be the same
rows, bit for bit, however the month is cut. These tests cut it every way that matters on a month that
exercises every month-level input: an hourly PUE meter, a site PPA matched hour by hour, a market
instrument shared by its zone, Scope 1 of the month, embodied carbon by model and by node, workloads
with teams, an unmapped node, hours without intensity.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest

from fixtures.agg.facts_store import store_from_config
from paths import FACILITY_EXAMPLE
from wattfleet import sql
from wattfleet.aggregator.store.rebuild import SLICE_ROWS_PER_GB, hour_slices, rebuild_month, set_month, slice_rows
from wattfleet.aggregator.store.transactions import transaction

OCTOBER = date(2026, 10, 1)
FACT_TABLES = ("fact_device_hour", "fact_workload_hour", "fact_instrument_month", "fact_inference_hour",
               "rollup", "rollup_workload", "rollup_inference")

# 40 hours at the start of October and 6 at its end; per node 4 GPUs, a CPU package and DRAM.
STAGING = """
INSERT INTO stg_energy_hourly
SELECT h.hour_utc, n.node, 'c-' || n.site_hint, n.site_hint, d.device, d.component, d.domain,
       CASE WHEN d.component = 'gpu' THEN n.gpu_model END, 'measured',
       1e6 + hash(h.hour_utc, n.node, d.device) % 2000000 / 7.0, 'prometheus'
  FROM (SELECT TIMESTAMP '2026-10-01' + INTERVAL (i) HOUR AS hour_utc FROM range(40) t(i)
        UNION ALL SELECT TIMESTAMP '2026-10-31 18:00' + INTERVAL (i) HOUR FROM range(6) t(i)) h,
       (SELECT 'sfo1-' || i AS node, '' AS site_hint, CASE WHEN i % 2 = 0 THEN 'NVIDIA H100' ELSE 'NVIDIA A100' END
               AS gpu_model FROM range(6) t(i)
        UNION ALL SELECT 'arn1-' || i, '', 'NVIDIA H100' FROM range(4) t(i)
        UNION ALL SELECT 'ghost', 'nowhere', 'NVIDIA H100') n,
       (SELECT CAST(i AS VARCHAR) AS device, 'gpu' AS component, 'gpu' AS domain FROM range(4) t(i)
        UNION ALL SELECT '0', 'cpu', 'package' UNION ALL SELECT '0', 'cpu', 'dram') d;
INSERT INTO stg_workload_hourly
SELECT e.hour_utc, e.node, e.cluster, '', CASE WHEN e.domain = 'dram' THEN 'dram' ELSE e.component END,
       w.namespace, w.workload, w.share, e.joules * w.part, 'prometheus'
  FROM stg_energy_hourly e,
       (SELECT 'research-a' AS namespace, 'deployment/train' AS workload, 'workload' AS share, 0.6 AS part
        UNION ALL SELECT 'search', 'deployment/web', 'workload', 0.3
        UNION ALL SELECT '', '', 'idle', 0.1) w
 WHERE e.node NOT IN ('sfo1-5', 'arn1-3') AND e.device = '0';
INSERT INTO stg_grid_intensity
SELECT z.zone, h.hour_utc, s.signal, 100 + hash(z.zone, h.hour_utc, s.signal) % 300, 0.3, 'test', false, NULL
  FROM (SELECT DISTINCT hour_utc FROM stg_energy_hourly) h, (VALUES ('CISO'), ('SE')) z(zone),
       (VALUES ('average'), ('marginal')) s(signal)
 WHERE NOT (z.zone = 'SE' AND h.hour_utc BETWEEN '2026-10-01 10:00' AND '2026-10-01 12:00');
INSERT INTO dim_site_pue VALUES ('sfo1', '2026-10-01 05:00', '2026-10-01 06:00', 130.0, 100.0);
"""


@pytest.fixture
def month(tmp_path):
    con, _ = store_from_config(tmp_path, FACILITY_EXAMPLE.read_text())
    con.execute(STAGING)
    return con


def _snapshot(con) -> dict[str, list[tuple]]:
    return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in FACT_TABLES}


def test_every_way_of_slicing_the_month_gives_the_same_facts_bit_for_bit(month):
    rebuild_month(month, OCTOBER)
    whole = _snapshot(month)
    assert all(whole[t] for t in ("fact_device_hour", "fact_workload_hour", "fact_instrument_month", "rollup"))
    rows_per_hour = month.execute("SELECT count(*) FROM stg_energy_hourly WHERE hour_utc = '2026-10-01'"
                                  ).fetchone()[0] + 11  # plus one overhead line per node
    for max_rows in (1, rows_per_hour, 3 * rows_per_hour + 5, 10**9):
        rebuild_month(month, OCTOBER, slice_max_rows=max_rows)
        got = _snapshot(month)
        for table in FACT_TABLES:
            assert got[table] == whole[table], f"{table} differs when sliced at {max_rows} rows"


def test_the_month_level_inputs_are_not_cut_by_the_slices(month):
    """Scope 1 is shared over the site's whole month and the PUE meter's hour keeps its PUE, one hour per slice."""
    rebuild_month(month, OCTOBER, slice_max_rows=1)
    scope1_g, = month.execute("SELECT sum(scope1_g) FROM fact_device_hour WHERE site = 'sfo1'").fetchone()
    # 400 L diesel + 3.5 kg R-410A in the example config, all of it on sfo1's October facts
    diesel_kg, refrigerant_kg = month.execute(
        "SELECT sum(scope1_diesel_kg(quantity, kg_co2e_per_unit)) FILTER (WHERE kind = 'diesel'), "
        "sum(scope1_refrigerant_kg(quantity, kg_co2e_per_unit)) FILTER (WHERE kind <> 'diesel') "
        "FROM dim_scope1 WHERE site = 'sfo1' AND month = '2026-10-01'").fetchone()
    assert scope1_g == pytest.approx((diesel_kg + refrigerant_kg) * 1000.0, rel=1e-12)
    pue = month.execute("SELECT DISTINCT pue_source FROM fact_device_hour WHERE site = 'sfo1' "
                        "AND hour_utc = '2026-10-01 05:00'").fetchall()
    assert pue == [("meter_hour",)]


def test_slices_cover_the_month_in_whole_hours_within_the_row_budget(month):
    with transaction(month):
        set_month(month, OCTOBER)
        for step in ("facts/010_node_site.sql", "facts/020_energy.sql"):
            month.execute(sql.load(step))
        per_hour = dict(month.execute("SELECT hour_utc, count(*) FROM _energy GROUP BY ALL").fetchall())
        for max_rows in (1, 100, 250, 10**9):
            spans = hour_slices(month, OCTOBER, max_rows)
            assert spans[0][0] == datetime(2026, 10, 1) and spans[-1][1] == datetime(2026, 11, 1)
            assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))
            for start, end in spans:
                rows = sum(n for h, n in per_hour.items() if start <= h < end)
                hours = sum(1 for h in per_hour if start <= h < end)
                assert rows <= max_rows or hours == 1
        assert len(hour_slices(month, OCTOBER, 10**9)) == 1 and len(hour_slices(month, OCTOBER, 1)) == len(per_hour)


def test_slices_grow_with_the_memory_limit():
    """4 M energy rows per GB of DuckDB's limit, read back from the setting DuckDB reports ('953.6 MiB')."""
    con = duckdb.connect()
    rows = {}
    for limit in ("512MB", "1GB", "4GB", "2GiB"):
        con.execute(f"SET memory_limit = '{limit}'")
        rows[limit] = slice_rows(con)
    assert rows["512MB"] < rows["1GB"] < rows["2GiB"] < rows["4GB"]
    assert rows["1GB"] == pytest.approx(SLICE_ROWS_PER_GB * 1e9 / 2**30, rel=0.01)
    assert rows["2GiB"] == pytest.approx(2 * SLICE_ROWS_PER_GB, rel=0.01)
