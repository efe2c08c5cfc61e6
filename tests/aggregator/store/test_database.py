"""Store: versioned migrations upgrade an old file; facts are rebuilt per month."""

from __future__ import annotations

from paths import REPO

from datetime import date

import duckdb
import pytest

from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.store.database import (LATEST_VERSION, StoreError, load_dimensions, migrate, open_store,
                                        rebuild_month, schema_version)

from paths import FACILITY_EXAMPLE as EXAMPLE


def tables(con) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_fresh_database_is_at_latest_version(tmp_path):
    con = open_store(tmp_path / "a.duckdb")
    assert schema_version(con) == LATEST_VERSION >= 2
    assert {"stg_energy_hourly", "fact_device_hour", "rollup", "stg_inference_hourly"} <= tables(con)


def test_v1_file_upgrades_and_keeps_data(tmp_path):
    path = tmp_path / "old.duckdb"
    con = open_store(path, migrate_to=1)
    assert schema_version(con) == 1
    assert "stg_inference_hourly" not in tables(con)
    con.execute("INSERT INTO stg_energy_hourly VALUES ('2026-10-01 00:00', 'n', 'c', 's', '0', 'gpu', 'gpu', "
                "'H100', 'measured', NULL, NULL, 3600000, 'prometheus')")
    con.close()
    con = open_store(path)
    assert schema_version(con) == LATEST_VERSION
    assert "stg_inference_hourly" in tables(con)
    assert "marginal_grams_per_kwh" in {r[0] for r in con.execute("DESCRIBE fact_device_hour").fetchall()}
    assert "rollup_inference_per_token" in tables(con)  # 004: the per-phase view
    assert con.execute("SELECT sum(joules) FROM stg_energy_hourly").fetchone()[0] == 3600000
    assert [r[0] for r in con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()] == \
        list(range(1, LATEST_VERSION + 1))
    migrate(con)  # idempotent
    assert schema_version(con) == LATEST_VERSION


def test_newer_file_is_refused(tmp_path):
    path = tmp_path / "new.duckdb"
    con = open_store(path)
    con.execute("INSERT INTO schema_version VALUES (999, 'future', now())")
    con.close()
    with pytest.raises(StoreError, match="newer"):
        open_store(path)


def test_failed_migration_rolls_back(tmp_path, monkeypatch):
    from wattfleet.aggregator.store import database as store
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    real = store.migrations()
    monkeypatch.setattr(store, "migrations", lambda: real[:1] + [(2, "broken", "CREATE TABLE ok_table (a INT); "
                                                                             "SELECT * FROM no_such_table;")])
    with pytest.raises(StoreError, match="002_broken"):
        migrate(con)
    assert schema_version(con) == 1
    assert "ok_table" not in tables(con)


def test_unmapped_node_and_pue_meter(tmp_path):
    con = open_store(":memory:")
    load_dimensions(con, load_facility(EXAMPLE))
    con.execute("INSERT INTO stg_grid_intensity VALUES ('CISO', '2026-09-10 05:00', 'average', 300, 0.2, 't', "
                "true, 'linear')")
    for node, site in (("sfo1-a", ""), ("ghost", "nowhere")):
        con.execute("INSERT INTO stg_energy_hourly VALUES ('2026-09-10 05:00', ?, 'c', ?, '0', 'gpu', 'gpu', "
                    "'NVIDIA A100', 'measured', NULL, NULL, 3600000, 'prometheus')", [node, site])
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
    assert con.execute("SELECT count(*) FROM fact_device_hour").fetchone()[0] == len(rows)


def _bench_facts(con, gpus: int = 24, hours: int = 50) -> None:
    """A small month of synthetic facts (the rollup benchmark's generator), spanning three days."""
    from pathlib import Path
    sql = (REPO / "bench" / "rollup_bench_facts.sql").read_text()
    con.execute(sql, {"gpus": gpus, "hours": hours})


def test_rollups_are_bit_identical_on_any_thread_count_and_exact_to_the_facts():
    """Fixed-point integer sums: the rollups do not depend on how threads split the facts."""
    from wattfleet.aggregator.store.database import rebuild_rollups
    con = open_store(":memory:")
    _bench_facts(con)
    snapshots = []
    for threads in (1, 2, 4, 1):
        con.execute(f"SET threads = {threads}")
        rebuild_rollups(con, date(2026, 10, 1))
        snapshots.append(con.execute("SELECT * FROM rollup ORDER BY ALL").fetchall())
    assert all(s == snapshots[0] for s in snapshots[1:]) and len(snapshots[0]) > 0
    n = con.execute("SELECT count(*) FROM fact_device_hour").fetchone()[0]
    facts = con.execute("SELECT sum(it_kwh), sum(scope2_location_g), sum(water_offsite_l), count(*) "
                        "FROM fact_device_hour").fetchone()
    for period in ("hour", "day", "month"):
        for dim in ("fleet", "site", "node", "team"):
            got = con.execute("SELECT sum(it_kwh), sum(scope2_location_g), sum(water_offsite_l), sum(gpu_hours) "
                              "FROM rollup WHERE period = ? AND dimension = ?", [period, dim]).fetchone()
            # each fact row rounds to the unit once: 1e-12 kWh, 1e-9 g, 1e-9 L
            assert got[0] == pytest.approx(facts[0], rel=1e-12, abs=n * 1e-12)
            assert got[1] == pytest.approx(facts[1], rel=1e-12, abs=n * 1e-9)
            assert got[2] == pytest.approx(facts[2], rel=1e-12, abs=n * 1e-9)
            assert got[3] == facts[3]
    days = con.execute("SELECT count(DISTINCT period_start) FROM rollup WHERE period = 'day'").fetchone()[0]
    assert days == 3
    # day and month are sums of the hourly fixed-point figures, so they agree exactly with them
    hour_sum, month = con.execute("SELECT sum(it_kwh) FILTER (WHERE period = 'hour'), "
                                  "max(it_kwh) FILTER (WHERE period = 'month') FROM rollup "
                                  "WHERE dimension = 'fleet'").fetchone()
    assert month == pytest.approx(hour_sum, rel=1e-14)


def test_rollups_reject_a_fact_beyond_the_fixed_point_range():
    from wattfleet.aggregator.store.database import rebuild_rollups
    con = open_store(":memory:")
    _bench_facts(con, gpus=8, hours=2)
    rebuild_rollups(con, date(2026, 10, 1))
    before = con.execute("SELECT * FROM rollup ORDER BY ALL").fetchall()
    con.execute("UPDATE fact_device_hour SET it_kwh = 1e8 WHERE device = '0' AND hour_utc = '2026-10-01 01:00'")
    with pytest.raises(StoreError, match=r"rollups\.sql.*2026-10.*fixed-point range"):
        rebuild_rollups(con, date(2026, 10, 1))
    assert con.execute("SELECT * FROM rollup ORDER BY ALL").fetchall() == before  # rolled back, nothing partial
