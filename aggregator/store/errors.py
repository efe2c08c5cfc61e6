"""The store's errors, shared by the connection, migration and rebuild modules."""

from __future__ import annotations

import duckdb


class StoreError(RuntimeError):
    """The database file cannot be used (newer schema than this wattfleet, failed migration, locked)."""


class StoreLockedError(StoreError, duckdb.IOException):
    """Another process held the file's lock for longer than we were willing to wait.

    Also a ``duckdb.IOException``, what DuckDB raises for a lock it cannot take
    at once, so callers that catch DuckDB's errors keep working.
    """


class StoreUnusableError(StoreError, duckdb.IOException):
    """The file is not a DuckDB database this wattfleet can open (damaged, foreign, incompatible).

    Also a ``duckdb.IOException`` (what DuckDB raised), so callers catching DuckDB's errors keep working.
    """
