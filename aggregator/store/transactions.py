"""Transactions and thread settings around groups of statements.

A failed write must leave nothing behind and report its own error; a
rebuilt month must sum in the same order every time. Both are settings of
the connection around a block, so they live together here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from wattfleet.aggregator.store.rows import one_row

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


@contextmanager
def single_threaded(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the enclosed statements on one DuckDB thread, then restore the setting.

    For work that more threads only slow down: the ingest's appends of
    batches of a few tens of thousands of rows (``ingest.writer.write_page``),
    where coordinating threads cost more than it saved. Not for determinism:
    the facts, rollups and totals sum exactly (``exact_sum``, fixed-point
    integers), so they give the same bits on every thread count.
    """
    threads = one_row(con, "SELECT current_setting('threads')")[0]
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute(f"SET threads = {int(threads)}")
