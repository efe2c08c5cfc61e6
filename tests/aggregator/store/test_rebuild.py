"""Store rebuild: facts are rebuilt per month from staging; rollups are exact on any thread count."""

from __future__ import annotations

from datetime import date

import pytest

from fixtures.agg.dataset_store import OCTOBER, synthetic_store
from paths import FACILITY_EXAMPLE as EXAMPLE
from paths import REPO
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.store.connection import open_store
from wattfleet.aggregator.store.dimensions import load_dimensions
from wattfleet.aggregator.store.errors import StoreError
from wattfleet.aggregator.store.rebuild import rebuild_month, rebuild_rollups, set_month
from wattfleet.aggregator.store.rows import one_row
from wattfleet.aggregator.store.transactions import transaction


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


ROLLUP_TABLES = ("rollup", "rollup_workload", "rollup_inference", "rollup_inference_prompt")


def _varied_store():
    """The dataset tests' two months of facts, with every case the rollups key on: estimated and
    unmeasured energy, missing site, cluster and model, non-workload shares, batch jobs without a
    namespace, workloads no team rule matches, several inference phases, unsplit prompt tokens."""
    con = synthetic_store(gpus=24, hours=60)
    con.execute("UPDATE fact_device_hour SET method = 'estimated', component = 'cpu' WHERE device = '1'")
    con.execute("UPDATE fact_device_hour SET cluster = NULL, gpu_model = NULL WHERE node = 'node00002'")
    con.execute("UPDATE fact_workload_hour SET team = NULL, it_kwh_measured = NULL WHERE node = 'node00001'")
    con.execute("INSERT INTO fact_workload_hour BY NAME SELECT * REPLACE ("
                "CASE WHEN hash(hour_utc, node) % 4 = 0 THEN 'workload' ELSE "
                "['idle', 'system', 'unallocated'][CAST(hash(hour_utc) % 3 AS BIGINT) + 1] END AS share, "
                "'' AS namespace, "
                "CASE WHEN hash(hour_utc, node) % 4 = 0 THEN 'slurm/' || (hash(node) % 5) ELSE '' END AS workload, "
                "NULL AS team, it_kwh / 7 AS it_kwh, 0.5 AS gpu_hours) FROM fact_workload_hour")
    con.execute("INSERT INTO fact_inference_hour BY NAME SELECT * REPLACE ("
                "['decode', 'idle'][CAST(hash(node) % 2 AS BIGINT) + 1] AS phase, it_kwh / 5 AS it_kwh) "
                "FROM fact_inference_hour")
    con.execute("INSERT INTO fact_inference_prompt_hour BY NAME SELECT * REPLACE (false AS split, "
                "'sglang' AS engine, 1234.5 AS unsplit_tokens) FROM fact_inference_prompt_hour")
    return con


def test_rollups_equal_the_fanned_out_definition_row_for_row():
    """Rolling days up from hours and the month from days gives exactly the rows (every bit of every value)
    of grouping each period from the hourly sums, as the rollup did before issue 18 (bench/rollup_month_fanout.sql)."""
    con = _varied_store()
    oracle = (REPO / "bench" / "rollup_month_fanout.sql").read_text()
    for month in (OCTOBER, date(2026, 11, 1)):
        rebuild_rollups(con, month)
        for table in ROLLUP_TABLES:
            con.execute(f"CREATE OR REPLACE TEMP TABLE new_{table} AS SELECT * FROM {table}")
        with transaction(con):
            set_month(con, month)
            con.execute(oracle)
        for table in ROLLUP_TABLES:
            rows = one_row(con, f"SELECT count(*) FROM {table} WHERE period_start >= ?", [month])[0]
            assert rows > 0, table
            for a, b in ((table, f"new_{table}"), (f"new_{table}", table)):
                extra = con.execute(f"SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}").fetchall()
                assert extra == [], f"{table}: rows in {a} and not in {b}"
    keys = {r[0] for r in con.execute("SELECT DISTINCT key FROM rollup WHERE dimension IN ('namespace', 'team')")
            .fetchall()}
    assert {"(idle)", "(system)", "(unallocated)", "(none)", "(unmapped)"} <= keys
