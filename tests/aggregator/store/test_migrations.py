"""Store migrations: versioned files upgrade an old database in place, or refuse a newer one."""

from __future__ import annotations

import duckdb
import pytest

from wattfleet.aggregator.store import migrations as store_migrations
from wattfleet.aggregator.store.connection import open_store
from wattfleet.aggregator.store.errors import StoreError
from wattfleet.aggregator.store.migrations import LATEST_VERSION, migrate, schema_version
from wattfleet.aggregator.store.rows import one_row


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
    assert one_row(con, "SELECT sum(joules) FROM stg_energy_hourly")[0] == 3600000
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
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    real = store_migrations.migrations()
    broken = (2, "broken", "CREATE TABLE ok_table (a INT); SELECT * FROM no_such_table;")
    monkeypatch.setattr(store_migrations, "migrations", lambda: real[:1] + [broken])
    with pytest.raises(StoreError, match="002_broken"):
        migrate(con)
    assert schema_version(con) == 1
    assert "ok_table" not in tables(con)
