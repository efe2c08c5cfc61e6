"""The SQL of wattfleet, in folders by layer, read with importlib.resources.

Layers: ``schema/`` (numbered migrations, history applied to existing
databases), ``staging/`` (the ingest writes), ``facts/`` (one numbered file
per step of the monthly rebuild, run in name order, then ``facts/slice/``
once per slice of the month's hours), ``rollups/``, ``queries/<reader>/``,
``dataset/`` (the Parquet dataset a site writes and a fleet rollup reads back)
and ``macros.sql`` (the formula layer). A file that holds several related
statements names each with a ``-- name: <block>`` line; ``load("staging/
ingest.sql#insert_energy")`` reads one block, ``load("facts/020_energy.sql")``
a whole file. Everything is cached: package data never changes while running,
and ``write_window`` reads seven statements per hour.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import duckdb

_BLOCK_RE = re.compile(r"^-- name: (\w+)\s*$", flags=re.M)
_STATEMENT_END_RE = re.compile(r";[ \t]*$", flags=re.M)
_PARAM_RE = re.compile(r"\$(\w+)")


@functools.cache
def file_text(path: str) -> str:
    """The text of ``sql/<path>`` (e.g. ``macros.sql``, ``schema/001_initial.sql``)."""
    return resources.files("wattfleet.sql").joinpath(path).read_text()


@functools.cache
def blocks(path: str) -> dict[str, str]:
    """The ``-- name: X`` blocks of ``sql/<path>``, in file order, without their trailing semicolon."""
    parts = _BLOCK_RE.split(file_text(path))
    return {parts[i]: parts[i + 1].strip().rstrip(";") for i in range(1, len(parts), 2)}


@functools.cache
def load(ref: str) -> str:
    """One statement or script: ``path`` is the whole file, ``path#block`` one named block of it."""
    path, _, block = ref.partition("#")
    if not block:
        return file_text(path)
    try:
        return blocks(path)[block]
    except KeyError:
        raise KeyError(f"sql/{path} has no block '-- name: {block}'") from None


@functools.cache
def statements(ref: str) -> tuple[str, ...]:
    """The statements of a file or block, split where a line ends with ``;`` (comments dropped)."""
    out = []
    for chunk in _STATEMENT_END_RE.split(load(ref)):
        code = "\n".join(line for line in chunk.splitlines() if not line.lstrip().startswith("--")).strip()
        if code:
            out.append(chunk.strip())
    return tuple(out)


def parameters(statement: str) -> frozenset[str]:
    """The ``$name`` parameters a statement uses (DuckDB refuses named parameters it does not use)."""
    return frozenset(_PARAM_RE.findall(statement))


def run(con: duckdb.DuckDBPyConnection, ref: str, params: dict[str, Any] | None = None) -> None:
    """Execute every statement of ``ref`` in order, each with the parameters it names."""
    for statement in statements(ref):
        used = parameters(statement)
        con.execute(statement, {k: v for k, v in (params or {}).items() if k in used} if used else None)


def files() -> list[str]:
    """Every ``.sql`` file shipped, as a path relative to the package (``facts/010_node_site.sql``), sorted."""
    root = resources.files("wattfleet.sql")

    def walk(folder: Any, prefix: str) -> Iterator[str]:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_dir() and not entry.name.startswith(("_", ".")):
                yield from walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(".sql"):
                yield prefix + entry.name

    return list(walk(root, ""))
