"""Schema migrations: ``sql/schema/NNN_name.sql``, applied in order and recorded in ``schema_version``.

An older database file upgrades in place; each migration is applied in its
own transaction, so a failed upgrade leaves the file at the previous version.
The files are history: never edit or renumber one, add the next.
"""

from __future__ import annotations

import re

import duckdb

from wattfleet import sql
from wattfleet.aggregator.store.errors import StoreError
from wattfleet.aggregator.store.rows import one_row
from wattfleet.aggregator.store.transactions import transaction

SCHEMA_FOLDER = "schema"
_MIGRATION_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration shipped, in order."""
    out = []
    for path in sql.files():
        folder, _, file = path.rpartition("/")
        m = _MIGRATION_RE.match(file)
        if folder == SCHEMA_FOLDER and m:
            out.append((int(m.group(1)), m.group(2), sql.load(path)))
    out.sort()
    versions = [v for v, _, _ in out]
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(f"migrations are not numbered 001..N without gaps: {versions}")
    return out


LATEST_VERSION = len(migrations())


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = one_row(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'")[0]
    if not exists:
        return 0
    return int(one_row(con, "SELECT coalesce(max(version), 0) FROM schema_version")[0])


def migrate(con: duckdb.DuckDBPyConnection, target: int | None = None) -> int:
    """Apply pending migrations up to ``target`` (default: all); returns the resulting version."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                "applied_at TIMESTAMP NOT NULL)")
    current = schema_version(con)
    if current > LATEST_VERSION:
        raise StoreError(f"database schema version {current} is newer than this wattfleet ({LATEST_VERSION})")
    for version, name, text in migrations():
        if version <= current or (target is not None and version > target):
            continue
        try:
            with transaction(con):
                con.execute(text)
                con.execute("INSERT INTO schema_version VALUES (?, ?, now())", [version, name])
        except Exception as exc:
            raise StoreError(f"migration {version:03d}_{name} failed: {exc}") from exc
        current = version
    return current
