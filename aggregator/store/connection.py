"""Open the DuckDB file: wait for another process's lock, migrate, load the formula macros.

DuckDB admits one writing process or several reading ones, and ``serve``
reads the file for a moment on every refresh, so opening waits (within
bounds) for a lock rather than failing a scheduled run on a collision of
milliseconds.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from wattfleet import sql
from wattfleet.aggregator.store.errors import StoreError, StoreLockedError, StoreUnusableError
from wattfleet.aggregator.store.migrations import LATEST_VERSION, migrate, schema_version
from wattfleet.aggregator.store.settings import StoreSettings

DEFAULT_LOCK_WAIT_SECONDS = 30.0
_LOCKED = "Could not set lock on file"
_HOLDER_RE = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")


def _connect_waiting(path: str, read_only: bool, lock_wait_seconds: float) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect``, retried while another process holds the file's lock."""
    deadline = time.monotonic() + lock_wait_seconds
    pause = 0.05
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            if _LOCKED not in str(exc):
                raise  # not a lock: open_store says what is wrong with the file
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
               lock_wait_seconds: float | None = None, settings: StoreSettings | None = None
               ) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the database at ``path``, migrated and with the formula macros loaded.

    Waits up to ``lock_wait_seconds`` (default ``DEFAULT_LOCK_WAIT_SECONDS``)
    for another process's lock on the file, then raises :class:`StoreLockedError`.
    """
    wait = DEFAULT_LOCK_WAIT_SECONDS if lock_wait_seconds is None else lock_wait_seconds
    try:
        con = _connect_waiting(str(path), read_only, wait)
    except StoreError:
        raise
    except duckdb.Error as exc:  # not a DuckDB file, a damaged one, an incompatible storage version
        if not Path(path).parent.is_dir():
            raise  # a wrong path, not a wrong file: DuckDB's own message says it best
        raise StoreUnusableError(_unusable(exc)) from None
    try:
        con.execute("SET TimeZone = 'UTC'")
        if settings is not None:
            settings.apply(con)
        if read_only:
            version = schema_version(con)
            if version > LATEST_VERSION:  # a reader must not misread tables a newer wattfleet laid out
                raise StoreError(f"database schema version {version} is newer than this wattfleet "
                                 f"({LATEST_VERSION}): upgrade wattfleet to read it")
        else:
            migrate(con, migrate_to)
        load_macros(con)
    except BaseException:
        con.close()
        raise
    return con


def _unusable(exc: Exception) -> str:
    return (f"cannot open as a wattfleet database ({type(exc).__name__}: {str(exc).splitlines()[0]}): "
            "not a DuckDB file, damaged, or written by an incompatible DuckDB version")


def load_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Formula macros are TEMP: always the shipped version, never stale copies in the file."""
    con.execute(sql.load("macros.sql"))


def naive_utc(dt: datetime) -> datetime:
    """DuckDB TIMESTAMP columns hold naive UTC."""
    return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo else dt
