"""The DuckDB store: open or create the database, migrate it, run the SQL files.

All schema lives in ``wattfleet.sql`` as readable files. Migrations are
numbered (``migrations/NNN_name.sql``) and recorded in ``schema_version`` so
an older database file upgrades in place; each is applied in its own
transaction, so a failed upgrade leaves the file at the previous version.
"""

from __future__ import annotations

import functools
import re
import time
from contextlib import contextmanager
from datetime import date, datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Iterator

import duckdb

from wattfleet.aggregator.config.dates import month_end
from wattfleet.aggregator.config.model import FacilityConfig

_MIGRATION_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


class StoreError(RuntimeError):
    """The database file cannot be used (newer schema than this wattfleet, failed migration, locked)."""


class StoreLockedError(StoreError, duckdb.IOException):
    """Another process held the file's lock for longer than we were willing to wait.

    Also a ``duckdb.IOException``, what DuckDB raises for a lock it cannot take
    at once, so callers that catch DuckDB's errors keep working.
    """


@functools.cache  # package data never changes while running; write_window reads 7 files per hour
def sql_text(name: str) -> str:
    """The text of ``sql/<name>`` (e.g. ``facts.sql``, ``migrations/001_initial.sql``)."""
    return resources.files("wattfleet.sql").joinpath(name).read_text()


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration shipped, in order."""
    out = []
    for entry in resources.files("wattfleet.sql").joinpath("migrations").iterdir():
        m = _MIGRATION_RE.match(entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text()))
    out.sort()
    versions = [v for v, _, _ in out]
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(f"migrations are not numbered 001..N without gaps: {versions}")
    return out


LATEST_VERSION = len(migrations())


_NO_TRANSACTION = "no transaction is active"


def rollback_after_failure(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back after a failed statement or COMMIT, without hiding the failure.

    A COMMIT that fails (e.g. ``No space left on device`` writing the WAL) has
    already been rolled back by DuckDB, and a second ``rollback()`` raises
    ``cannot rollback - no transaction is active``, which would replace the
    real error the user needs to see. Only that case is ignored.
    """
    try:
        con.rollback()
    except duckdb.TransactionException as exc:
        if _NO_TRANSACTION not in str(exc):
            raise


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN ... COMMIT around the block; on any failure roll back and re-raise the ORIGINAL error."""
    con.begin()
    try:
        yield
        con.commit()
    except BaseException:
        rollback_after_failure(con)
        raise


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
                         ).fetchone()[0]
    if not exists:
        return 0
    return int(con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])


def migrate(con: duckdb.DuckDBPyConnection, target: int | None = None) -> int:
    """Apply pending migrations up to ``target`` (default: all); returns the resulting version."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                "applied_at TIMESTAMP NOT NULL)")
    current = schema_version(con)
    if current > LATEST_VERSION:
        raise StoreError(f"database schema version {current} is newer than this wattfleet ({LATEST_VERSION})")
    for version, name, sql in migrations():
        if version <= current or (target is not None and version > target):
            continue
        try:
            with transaction(con):
                con.execute(sql)
                con.execute("INSERT INTO schema_version VALUES (?, ?, now())", [version, name])
        except Exception as exc:
            raise StoreError(f"migration {version:03d}_{name} failed: {exc}") from exc
        current = version
    return current


DEFAULT_LOCK_WAIT_SECONDS = 30.0
_LOCKED = "Could not set lock on file"
_HOLDER_RE = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")


def _connect_waiting(path: str, read_only: bool, lock_wait_seconds: float) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect``, retried while another process holds the file's lock.

    DuckDB admits one writing process or several reading ones. ``serve``
    reads the file for a moment on every refresh, so ``aggregate`` (or a
    ``report`` during an ``aggregate``) may find it locked: wait, within
    bounds, rather than fail a scheduled run on a collision of milliseconds.
    """
    deadline = time.monotonic() + lock_wait_seconds
    pause = 0.05
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            if _LOCKED not in str(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                held = _HOLDER_RE.search(str(exc))
                holder = f"{held.group(1)} (PID {held.group(2)})" if held else "another process"
                raise StoreLockedError(f"database is locked by {holder}; gave up after {lock_wait_seconds:g} s. "
                                       "DuckDB admits one writing process or several reading ones at a time: "
                                       "run again when the other aggregate, report or serve is done") from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 1.0)


def open_store(path: str | Path, read_only: bool = False, migrate_to: int | None = None,
               lock_wait_seconds: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the database at ``path``, migrated and with the formula macros loaded.

    Waits up to ``lock_wait_seconds`` (default ``DEFAULT_LOCK_WAIT_SECONDS``)
    for another process's lock on the file, then raises :class:`StoreLockedError`.
    """
    wait = DEFAULT_LOCK_WAIT_SECONDS if lock_wait_seconds is None else lock_wait_seconds
    con = _connect_waiting(str(path), read_only, wait)
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        migrate(con, migrate_to)
    load_macros(con)
    return con


def load_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Formula macros are TEMP: always the shipped version, never stale copies in the file."""
    con.execute(sql_text("macros.sql"))


def naive_utc(dt: datetime) -> datetime:
    """DuckDB TIMESTAMP columns hold naive UTC."""
    return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo else dt


def load_dimensions(con: duckdb.DuckDBPyConnection, cfg: FacilityConfig) -> None:
    """Replace the facility dimension tables with ``cfg`` (one transaction)."""
    with transaction(con):
        for table in ("dim_site", "dim_site_pue", "dim_node_pattern", "dim_instrument", "dim_scope1",
                      "dim_embodied", "dim_budget"):
            con.execute(f"DELETE FROM {table}")
        ord_ = 0
        for site in cfg.sites.values():
            con.execute("INSERT INTO dim_site VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [site.name, site.zone, site.pue, site.wue_liters_per_kwh, site.offsite_water_liters_per_kwh,
                         site.residual_mix_grams_per_kwh, site.upstream_grams_per_kwh, site.overhead_ratio,
                         site.overhead_watts_per_node])
            for m in site.pue_meter:
                con.execute("INSERT INTO dim_site_pue VALUES (?, ?, ?, ?, ?)",
                            [site.name, naive_utc(m.start), naive_utc(m.end), m.total_kwh, m.it_kwh])
            for pattern in site.nodes:
                con.execute("INSERT INTO dim_node_pattern VALUES (?, ?, ?)", [site.name, pattern, ord_])
                ord_ += 1
        for i in cfg.instruments:
            con.execute("INSERT INTO dim_instrument VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [i.name, i.type, i.site, i.market, naive_utc(i.start), naive_utc(i.end), i.mwh,
                         i.grams_per_kwh, i.hourly_matched])
        for s in cfg.scope1:
            con.execute("INSERT INTO dim_scope1 VALUES (?, ?, ?, ?, ?, ?)",
                        [s.site, s.kind, s.month, s.quantity, s.kg_co2e_per_unit, s.label])
        for n, e in enumerate(cfg.embodied):
            con.execute("INSERT INTO dim_embodied VALUES (?, ?, ?, ?, ?)",
                        [n, e.gpu_model, e.node, e.kg_co2e, e.life_years])
        for b in cfg.budgets:
            con.execute("INSERT INTO dim_budget VALUES (?, ?, ?, ?)", [b.owner_kind, b.owner, b.month, b.kg_co2e])


@contextmanager
def single_threaded(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the enclosed statements on one DuckDB thread, then restore the setting.

    Floating-point sums depend on the order of additions, and a parallel
    hash aggregate adds in whatever order threads pick up row groups: on a
    month of a large fleet two builds of the same facts differed in the last
    bits of thousands of rollup rows. One thread adds in storage order, so
    re-running a month gives bit-identical facts and totals. (The rollups
    sum fixed-point integers instead, which is exact in any order, so they
    run on every thread: see ``ORDER_INDEPENDENT_SQL``.)
    """
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute(f"SET threads = {int(threads)}")


# SQL files whose results do not depend on the order of additions (rollups.sql sums fixed-point
# integers), so they run on every DuckDB thread; the others run on one (see single_threaded).
ORDER_INDEPENDENT_SQL = frozenset({"rollups.sql"})


def _build(con: duckdb.DuckDBPyConnection, month: date, files: tuple[str, ...]) -> None:
    start = datetime(month.year, month.month, 1)
    end_d = month_end(date(month.year, month.month, 1))
    con.execute("CREATE OR REPLACE TEMP TABLE build_window (month_start TIMESTAMP, month_end TIMESTAMP)")
    con.execute("INSERT INTO build_window VALUES (?, ?)", [start, datetime(end_d.year, end_d.month, 1)])
    for name in files:
        if name in ORDER_INDEPENDENT_SQL:
            try:
                con.execute(sql_text(name))
            except duckdb.ConversionException as exc:
                raise StoreError(f"sql/{name}: a fact of {month:%Y-%m} is beyond the fixed-point range of the "
                                 f"rollups (at most 9.2e6 kWh, 9.2e9 g or 9.2e9 L in one row): {exc}") from exc
        else:
            with single_threaded(con):
                con.execute(sql_text(name))


def rebuild_month(con: duckdb.DuckDBPyConnection, month: date) -> None:
    """Rebuild facts and rollups of ``month`` from staging in one transaction; clears its dirty mark."""
    with transaction(con):
        _build(con, month, ("facts.sql", "rollups.sql"))
        con.execute("DELETE FROM dirty_month WHERE month = ?", [date(month.year, month.month, 1)])


def rebuild_rollups(con: duckdb.DuckDBPyConnection, month: date) -> None:
    """Rebuild only the rollups of ``month`` from its facts (one transaction), as rebuild_month does."""
    with transaction(con):
        _build(con, month, ("rollups.sql",))


def rebuild_dirty(con: duckdb.DuckDBPyConnection) -> list[date]:
    """Rebuild every month whose staging changed since its facts were built."""
    months = [r[0] for r in con.execute("SELECT month FROM dirty_month ORDER BY month").fetchall()]
    for m in months:
        rebuild_month(con, m)
    return months
