"""DuckDB's resources for one connection: memory limit, threads, spill directory.

Kept apart from the connection code (and free of a ``duckdb`` import) so the
facility config, which has a ``store`` section, loads without the aggregator
extra.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

DEFAULT_MEMORY_LIMIT = "1GB"  # `aggregate`'s default: DuckDB's own is 80% of the machine's memory
_MEMORY_RE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


@dataclass(frozen=True)
class StoreSettings:
    """DuckDB's memory limit, threads and spill directory for one connection (None: DuckDB's default).

    DuckDB keeps its buffer pool under ``memory_limit`` and spills larger
    sorts, joins and aggregates to ``temp_directory`` (default: ``<db>.tmp``
    next to the file); ``threads`` defaults to the machine's cores. A run on
    a shared node sets all three (``wattfleet aggregate --duckdb-*``, or the
    facility config's ``store`` section).
    """

    memory_limit: str | None = None
    threads: int | None = None
    temp_directory: str | None = None

    def __post_init__(self) -> None:
        if self.memory_limit is not None and not _MEMORY_RE.match(self.memory_limit.strip()):
            raise ValueError(f"memory limit {self.memory_limit!r}: a size such as 512MB, 1GB or 2GiB")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads {self.threads}: at least 1")

    def merged(self, other: StoreSettings) -> StoreSettings:
        """These settings, each unset one taken from ``other`` (flags over config)."""
        return StoreSettings(self.memory_limit or other.memory_limit, self.threads or other.threads,
                             self.temp_directory or other.temp_directory)

    def apply(self, con: duckdb.DuckDBPyConnection) -> None:
        if self.memory_limit is not None:
            con.execute(f"SET memory_limit = '{self.memory_limit.strip()}'")  # checked by _MEMORY_RE
        if self.threads is not None:
            con.execute(f"SET threads = {int(self.threads)}")
        if self.temp_directory is not None:
            escaped = self.temp_directory.replace("'", "''")
            con.execute(f"SET temp_directory = '{escaped}'")
