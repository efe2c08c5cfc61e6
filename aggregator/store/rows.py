"""The one row of a query that always returns exactly one (an aggregate, a setting), typed as a row."""

from __future__ import annotations

from typing import Any

import duckdb

from wattfleet.aggregator.store.errors import StoreError


def one_row(con: duckdb.DuckDBPyConnection, query: str, params: object = None) -> tuple[Any, ...]:
    """``con.execute(query, params).fetchone()``, which the query guarantees is a row: none is a StoreError."""
    row = con.execute(query, params).fetchone()
    if row is None:
        raise StoreError(f"expected one row, the query returned none: {query}")
    return row
