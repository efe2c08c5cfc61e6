"""Store rebuild: facts are rebuilt per month from staging; rollups are exact on any thread count."""

from __future__ import annotations

from datetime import date

import pytest

from paths import FACILITY_EXAMPLE as EXAMPLE
from paths import REPO
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.store.connection import open_store
from wattfleet.aggregator.store.dimensions import load_dimensions
from wattfleet.aggregator.store.errors import StoreError
from wattfleet.aggregator.store.rebuild import rebuild_month, rebuild_rollups
from wattfleet.aggregator.store.rows import one_row


def test_unmapped_node_and_pue_meter(tmp_path):
    con = open_store(":memory:")
    load_dimensions(con, load_facility(EXAMPLE))
    con.execute("INSERT INTO stg_grid_intensity VALUES ('CISO', '2026-09-10 05:00', 'average', 300, 0.2, 't', "
                "true, 'linear')")
    for node, site in (("sfo1-a", ""), ("ghost", "nowhere")):
        con.execute("INSERT INTO stg_energy_hourly VALUES ('2026-09-10 05:00', ?, 'c', ?, '0', 'gpu', 'gpu', "
                    "'NVIDIA A100', 'measured', 3600000, 'prometheus')", [node, site])
    rebuild_month(con, date(2026, 9, 1))
    rows = con.execute("SELECT node, device, site, pue, pue_source, facility_kwh, intensity_filled, site_unmapped, "
                       "scope2_location_g FROM fact_device_hour ORDER BY node, device").fetchall()
    ghost = [r for r in rows if r[0] == "ghost"]
    assert ghost and all(r[2] is None and r[7] for r in ghost)  # flagged, never silently dropped
    gpu = [r for r in rows if r[0] == "sfo1-a" and r[1] == "0"][0]
    assert gpu[3] == pytest.approx(1.33) and gpu[4] == "meter_period"  # September monthly meter
    assert gpu[5] == pytest.approx(1.33) and gpu[6] is True
    assert gpu[8] == pytest.approx(1.33 * 300)
    # rebuilding again is a replace, not an append
    rebuild_month(con, date(2026, 9, 1))
    assert one_row(con, "SELECT count(*) FROM fact_device_hour")[0] == len(rows)


def _bench_facts(con, gpus: int = 24, hours: int = 50) -> None:
    """A small month of synthetic facts (the rollup benchmark's generator), spanning three days."""
    sql = (REPO / "bench" / "rollup_bench_facts.sql").read_text()
    con.execute(sql, {"gpus": gpus, "hours": hours})
    con.execute((REPO / "bench" / "rollup_bench_workloads.sql").read_text())


def test_rollups_are_bit_identical_on_any_thread_count_and_exact_to_the_facts():
    """Fixed-point integer sums: the rollups do not depend on how threads split the facts."""
    con = open_store(":memory:")
    _bench_facts(con)
    snapshots = []
    for threads in (1, 2, 4, 1):
        con.execute(f"SET threads = {threads}")
        rebuild_rollups(con, date(2026, 10, 1))
        snapshots.append(con.execute("SELECT * FROM rollup ORDER BY ALL").fetchall())
    assert all(s == snapshots[0] for s in snapshots[1:]) and len(snapshots[0]) > 0
    n = one_row(con, "SELECT count(*) FROM fact_device_hour")[0]
    facts = one_row(con, "SELECT sum(it_kwh), sum(scope2_location_g), sum(water_offsite_l), count(*) "
                         "FROM fact_device_hour")
    for period in ("hour", "day", "month"):
        for dim in ("fleet", "site", "node", "team"):
            got = one_row(con, "SELECT sum(it_kwh), sum(scope2_location_g), sum(water_offsite_l), sum(gpu_hours) "
                               "FROM rollup WHERE period = ? AND dimension = ?", [period, dim])
            # each fact row rounds to the unit once: 1e-12 kWh, 1e-9 g, 1e-9 L
            assert got[0] == pytest.approx(facts[0], rel=1e-12, abs=n * 1e-12)
            assert got[1] == pytest.approx(facts[1], rel=1e-12, abs=n * 1e-9)
            assert got[2] == pytest.approx(facts[2], rel=1e-12, abs=n * 1e-9)
            assert got[3] == facts[3]
    days = one_row(con, "SELECT count(DISTINCT period_start) FROM rollup WHERE period = 'day'")[0]
    assert days == 3
    # day and month are sums of the hourly fixed-point figures, so they agree exactly with them
    hour_sum, month = one_row(con, "SELECT sum(it_kwh) FILTER (WHERE period = 'hour'), "
                                   "max(it_kwh) FILTER (WHERE period = 'month') FROM rollup "
                                   "WHERE dimension = 'fleet'")
    assert month == pytest.approx(hour_sum, rel=1e-14)


def test_rollups_reject_a_fact_beyond_the_fixed_point_range():
    con = open_store(":memory:")
    _bench_facts(con, gpus=8, hours=2)
    rebuild_rollups(con, date(2026, 10, 1))
    before = con.execute("SELECT * FROM rollup ORDER BY ALL").fetchall()
    con.execute("UPDATE fact_device_hour SET it_kwh = 1e8 WHERE device = '0' AND hour_utc = '2026-10-01 01:00'")
    with pytest.raises(StoreError, match=r"rollups/month\.sql.*2026-10.*fixed-point range"):
        rebuild_rollups(con, date(2026, 10, 1))
    assert con.execute("SELECT * FROM rollup ORDER BY ALL").fetchall() == before  # rolled back, nothing partial
