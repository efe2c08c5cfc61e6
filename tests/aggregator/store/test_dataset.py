"""The Parquet dataset: site stores export their months; the fleet rollup from them equals one store's, exactly."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest

from fixtures.agg.dataset_store import OCTOBER, synthetic_store
from wattfleet.aggregator.store.connection import open_store
from wattfleet.aggregator.store.dataset import DatasetError, export_store, fleet_rollup
from wattfleet.aggregator.store.rebuild import rebuild_rollups
from wattfleet.aggregator.store.rows import one_row
from wattfleet.cli import main

FACTS = ("fact_device_hour", "fact_workload_hour", "fact_inference_hour", "fact_inference_prompt_hour")
ROLLUPS = ("rollup", "rollup_inference", "rollup_inference_prompt", "rollup_workload")


def rollup_rows(con: duckdb.DuckDBPyConnection, month: date = OCTOBER, table: str = "rollup") -> list[tuple]:
    return con.execute(f"SELECT * FROM {table} WHERE date_trunc('month', period_start) = ? ORDER BY ALL",
                       [month]).fetchall()


def test_fleet_rollup_from_the_dataset_equals_the_single_store_bit_for_bit(tmp_path):
    con = synthetic_store()
    files = export_store(con, tmp_path)
    assert {f.relative_to(tmp_path).parts[:2] for f in files} == {
        (t, m) for t in FACTS for m in ("month=2026-10", "month=2026-11")}
    sites = {p.name for p in (tmp_path / "fact_device_hour" / "month=2026-10").iterdir()}
    assert "site=__HIVE_DEFAULT_PARTITION__" in sites and "site=a%20b%2Fc%27d%3D1" in sites and "site=7" in sites
    assert not (tmp_path / "rollup").exists()  # a multi-site store's fleet rows cannot be split by site

    fleet = open_store(":memory:")
    assert fleet_rollup(fleet, tmp_path, OCTOBER) == sum(
        one_row(con, f"SELECT count(*) FROM {t} WHERE hour_utc < '2026-11-01'")[0] for t in FACTS)
    for table in ROLLUPS:
        assert rollup_rows(fleet, table=table) == rollup_rows(con, table=table) != [], table
    facts = "SELECT * FROM fact_device_hour ORDER BY ALL"
    assert fleet.execute(facts).fetchall() == [r for r in con.execute(facts).fetchall() if r[0] < datetime(2026, 11, 1)]


def test_re_export_replaces_partitions_and_never_double_counts(tmp_path):
    con = synthetic_store()
    first = sorted(export_store(con, tmp_path, [OCTOBER]))
    con.execute("UPDATE fact_device_hour SET it_kwh = it_kwh * 2 WHERE site = 'site3'")
    rebuild_rollups(con, OCTOBER)
    assert sorted(export_store(con, tmp_path, [OCTOBER])) == first
    assert not [p for p in tmp_path.rglob(".*")]  # no staging or swapped-out directories left behind
    fleet = open_store(":memory:")
    fleet_rollup(fleet, tmp_path, OCTOBER)
    assert rollup_rows(fleet) == rollup_rows(con)


def test_site_stores_writing_one_dataset_give_the_fleet_store(tmp_path):
    """The scale-out layout: one aggregator per site, each its own store, all exporting to one root."""
    whole = synthetic_store()
    sites = [r[0] for r in whole.execute("SELECT DISTINCT site FROM fact_device_hour ORDER BY ALL").fetchall()]
    for i, site in enumerate(sites):
        part = open_store(tmp_path / f"site{i}.duckdb")
        for table in FACTS:
            rows = whole.execute(f"SELECT * FROM {table} WHERE site IS NOT DISTINCT FROM ?", [site]).fetchall()
            if rows:
                part.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
        rebuild_rollups(part, OCTOBER)
        export_store(part, tmp_path / "dataset", [OCTOBER])
        # A one-site store also writes its own rollups, under its site, readable as they are.
        glob = tmp_path / "dataset" / "rollup" / "month=2026-10" / "*" / "*.parquet"
        mine = part.execute("SELECT * EXCLUDE (month, site) FROM read_parquet(?, hive_partitioning = true, "
                            "hive_types_autocast = false) WHERE site IS NOT DISTINCT FROM ? ORDER BY ALL",
                            [str(glob), site]).fetchall()
        assert mine == rollup_rows(part) and mine
        part.close()
    fleet = open_store(":memory:")
    fleet_rollup(fleet, tmp_path / "dataset", OCTOBER)
    for table in ROLLUPS:
        assert rollup_rows(fleet, table=table) == rollup_rows(whole, table=table), table
    by_site = duckdb.connect().execute(
        "SELECT site, count(*) FROM read_parquet(?, hive_partitioning = true, hive_types_autocast = false) "
        "GROUP BY site", [str(tmp_path / "dataset" / "rollup" / "*" / "*" / "*.parquet")]).fetchall()
    assert {s for s, _ in by_site} == set(sites)


def test_a_month_with_no_facts_in_the_dataset_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="no facts for 2026-09"):
        fleet_rollup(open_store(":memory:"), tmp_path, date(2026, 9, 1))


def test_cli_export_then_fleet_rollup(tmp_path, capsys):
    site_db = tmp_path / "site.duckdb"
    synthetic_store(site_db).close()
    assert main(["dataset", "export", "--db", str(site_db), "--out", str(tmp_path / "ds"), "--month", "2026-10"]) == 0
    assert "file(s) under" in capsys.readouterr().out
    fleet_db = tmp_path / "fleet.duckdb"
    assert main(["dataset", "rollup", "--dataset", str(tmp_path / "ds"), "--month", "2026-10",
                 "--db", str(fleet_db)]) == 0
    assert "fact rows" in capsys.readouterr().out
    assert main(["dataset", "rollup", "--dataset", str(tmp_path / "ds"), "--month", "2026-11",
                 "--db", str(fleet_db)]) == 1
    assert "no facts for 2026-11" in capsys.readouterr().err
