"""Facts and rollups as a Hive-partitioned Parquet dataset, and a fleet store rebuilt from one.

Scale-out without a new engine of our own: each site's aggregator keeps its own DuckDB file and
writes its months to one shared dataset (a directory, or a mount of object storage),

    <root>/<table>/month=YYYY-MM/site=<site>/data_0.parquet

the layout Hive, Spark, Trino, DuckDB and Polars all read (DuckDB's own partitioned ``COPY``
writes it: site values are URL-encoded, a NULL site is ``__HIVE_DEFAULT_PARTITION__``, the
partition columns live in the path, not in the files). A fleet-wide rollup then reads every
site's facts back into an empty store and runs the same ``sql/rollups/month.sql``: the rollups
sum fixed-point integers, so the fleet rollup equals the one a single database holding all sites
would build, bit for bit (tests/aggregator/store/test_dataset.py checks it, and that Spark SQL
reads the same monthly totals).

Exports replace whole partitions: a re-export of a month replaces that site's files, never adds to
them, so nothing is counted twice; partitions of sites this store does not hold (written by other
sites' aggregators) are left alone. One site is written by one aggregator (docs/scale.md).
"""

from __future__ import annotations

import shutil
import uuid
from datetime import date
from pathlib import Path

import duckdb

from wattfleet import sql
from wattfleet.aggregator.store.rebuild import rebuild_rollups, set_month
from wattfleet.aggregator.store.transactions import transaction

# Tables with an hour and a site: partitioned by the month of hour_utc and by site.
FACT_TABLES = ("fact_device_hour", "fact_inference_hour", "fact_workload_hour")
# The site's own rollups, for readers that want them without rebuilding (only a one-site store
# writes them: a multi-site store's fleet rows cannot be split by site).
ROLLUP_TABLE = "rollup"
_EXPORT = "dataset/export.sql"


class DatasetError(Exception):
    """A dataset that cannot be written or read as asked."""


def _literal(path: Path) -> str:
    """A path as a SQL string literal (COPY takes no parameter for its target)."""
    return "'" + str(path).replace("'", "''") + "'"


def _tables(con: duckdb.DuckDBPyConnection, block: str) -> list[str]:
    """Table names from the schema (``hourly_facts``: every fact table with an hour and a site, which the
    rollups read; ``rollups``: every rollup table), so a table a migration adds travels too."""
    return [r[0] for r in con.execute(sql.load(f"{_EXPORT}#{block}")).fetchall()]


def _months(con: duckdb.DuckDBPyConnection) -> list[date]:
    rows = con.execute(sql.load(f"{_EXPORT}#months")).fetchall()
    return [r[0] for r in rows]


def _replace_partitions(staged: Path, target: Path) -> list[Path]:
    """Move each staged ``month=M/site=S`` directory into ``target``, replacing what was there."""
    written = []
    for part in sorted(p for p in staged.glob("month=*/site=*") if p.is_dir()):
        dest = target / part.parent.name / part.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex}")
        if dest.exists():
            dest.rename(old)  # the swap: readers see the old or the new partition, never both
        part.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
        written.extend(sorted(dest.glob("*.parquet")))
    return written


def export_month(con: duckdb.DuckDBPyConnection, root: str | Path, month: date) -> list[Path]:
    """Write ``month``'s hourly facts (and a one-site store's rollups) under ``root``; returns the files."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    set_month(con, month)
    sites = con.execute(sql.load(f"{_EXPORT}#sites")).fetchall()
    tables = [(t, "facts") for t in _tables(con, "hourly_facts")]
    if len(sites) == 1:  # a multi-site store's fleet rollup rows cannot be split by site
        tables += [(t, "rollup_rows") for t in _tables(con, "rollups")]
    for table, block in tables:
        # Staged beside the target (same filesystem, so the final move is a rename).
        staged = root / table / f".staging-{uuid.uuid4().hex}"
        try:
            staged.parent.mkdir(parents=True, exist_ok=True)
            select = sql.load(f"{_EXPORT}#{block}").replace("{table}", table)
            if block == "rollup_rows":
                con.execute("SET VARIABLE export_site = ?", [sites[0][0]])
            con.execute(f"COPY ({select}) TO {_literal(staged)} "
                        "(FORMAT parquet, PARTITION_BY (month, site), COMPRESSION zstd)")
            if staged.exists():
                written += _replace_partitions(staged, root / table)
        except (duckdb.IOException, OSError) as exc:
            raise DatasetError(f"{root / table}: cannot write {month:%Y-%m}: {exc}") from exc
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    return written


def export_store(con: duckdb.DuckDBPyConnection, root: str | Path, months: list[date] | None = None) -> list[Path]:
    """Export the given months (default: every month with facts) of a store to the dataset."""
    out: list[Path] = []
    for m in months if months is not None else _months(con):
        out += export_month(con, root, m)
    return out


def _month_glob(root: Path, table: str, month: date) -> str:
    return str(root / table / f"month={month:%Y-%m}" / "site=*" / "*.parquet")


def load_month(con: duckdb.DuckDBPyConnection, root: str | Path, month: date) -> int:
    """Replace ``month``'s facts in ``con`` by every site's facts in the dataset; returns the rows read."""
    root = Path(root)
    n = 0
    with transaction(con):
        set_month(con, month)
        con.execute(sql.load("facts/000_clear_month.sql"))
        for table in _tables(con, "hourly_facts"):
            pattern = _month_glob(root, table, month)
            if not list((root / table / f"month={month:%Y-%m}").glob("site=*/*.parquet")):
                continue
            before = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            con.execute(sql.load(f"{_EXPORT}#load").replace("{table}", table), [pattern])
            after = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert before is not None and after is not None
            n += after[0] - before[0]
    return n


def fleet_rollup(con: duckdb.DuckDBPyConnection, root: str | Path, month: date) -> int:
    """Load every site's facts of ``month`` from the dataset and build the fleet's rollups in ``con``."""
    n = load_month(con, root, month)
    if n == 0:
        raise DatasetError(f"{root}: no facts for {month:%Y-%m} (expected <table>/month={month:%Y-%m}/site=*/)")
    rebuild_rollups(con, month)
    return n
