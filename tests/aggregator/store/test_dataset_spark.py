"""An existing distributed engine reads wattfleet's Parquet dataset and gets the same monthly totals.

Spark SQL (pyspark in local mode, on Debian's Java runtime) is the engine most fleets already run
next to object storage; it reads the Hive layout `wattfleet dataset export` writes with its own
partition discovery, no wattfleet code on the read side. Its sums use the rollups' fixed-point
rule (round to pico-kWh / nanograms, add integers), so equal means equal to the last bit.
"""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from fixtures.agg.dataset_store import synthetic_store
from wattfleet.aggregator.store.dataset import export_store

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")

# (rollup column, its fixed-point scale in sql/rollups/month.sql)
TOTALS = {"it_kwh": 1e12, "facility_kwh": 1e12, "scope2_location_g": 1e9, "scope2_market_g": 1e9,
          "scope1_g": 1e9, "scope3_embodied_g": 1e9, "water_offsite_l": 1e9}


@pytest.fixture(scope="module")
def spark():
    session = (SparkSession.builder.master("local[1]").appName("wattfleet-dataset-test")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.driver.host", "127.0.0.1").config("spark.sql.shuffle.partitions", "1")
               # Partition values as text, as written: a site named "7" is not the number 7.
               .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
               .getOrCreate())
    yield session
    session.stop()


def test_spark_sql_reads_the_dataset_and_gives_the_stores_monthly_totals(spark, tmp_path):
    con = synthetic_store()
    export_store(con, tmp_path)
    spark.read.parquet(str(tmp_path / "fact_device_hour")).createOrReplaceTempView("fact_device_hour")
    sums = ", ".join(f"CAST(sum(CAST(round({c} * {s}) AS BIGINT)) AS DOUBLE) / {s} AS {c}" for c, s in TOTALS.items())
    got = {}
    for r in spark.sql(f"SELECT month, NULL AS site, {sums} FROM fact_device_hour GROUP BY month "
                       f"UNION ALL SELECT month, site, {sums} FROM fact_device_hour WHERE site IS NOT NULL "
                       "GROUP BY month, site").collect():
        got[(r["month"], r["site"])] = {c: r[c] for c in TOTALS}
    # The store's monthly rollups: the fleet (site None here) and each site (an unmapped node's NULL
    # site counts in the fleet only, in both).
    cols = ", ".join(TOTALS)
    want: dict[tuple[str, str | None], dict[str, float]] = {}
    for dimension, key, start, *values in con.execute(
            f"SELECT dimension, key, period_start, {cols} FROM rollup WHERE period = 'month' "
            "AND dimension IN ('fleet', 'site')").fetchall():
        want[(f"{start:%Y-%m}", None if dimension == "fleet" else key)] = dict(zip(TOTALS, values, strict=True))
    assert set(got) == set(want) and ("2026-11", None) in want and ("2026-10", "a b/c'd=1") in want
    for key, expected in want.items():
        assert got[key] == expected, key
