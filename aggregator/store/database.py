"""The DuckDB store, in one import: connection, migrations, dimensions and the month rebuild.

Each job has its own module (``connection``, ``migrations``, ``dimensions``,
``rebuild``, ``transactions``, ``errors``); this module names them together
for the callers that use several, so they need not know the split.
"""

from __future__ import annotations

from wattfleet.aggregator.store.connection import DEFAULT_LOCK_WAIT_SECONDS, load_macros, naive_utc, open_store
from wattfleet.aggregator.store.dimensions import load_dimensions
from wattfleet.aggregator.store.errors import StoreError, StoreLockedError
from wattfleet.aggregator.store.migrations import LATEST_VERSION, migrate, migrations, schema_version
from wattfleet.aggregator.store.rebuild import rebuild_dirty, rebuild_month, rebuild_rollups
from wattfleet.aggregator.store.transactions import rollback_after_failure, single_threaded, transaction
from wattfleet.sql import load as sql_text

__all__ = ["DEFAULT_LOCK_WAIT_SECONDS", "LATEST_VERSION", "StoreError", "StoreLockedError", "load_dimensions",
           "load_macros", "migrate", "migrations", "naive_utc", "open_store", "rebuild_dirty", "rebuild_month",
           "rebuild_rollups", "rollback_after_failure", "schema_version", "single_threaded", "sql_text",
           "transaction"]
