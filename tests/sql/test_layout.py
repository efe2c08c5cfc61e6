"""The SQL package's layout: every folder a layer, every file and block used, no file for one trivial line."""

from __future__ import annotations

import re
from pathlib import Path

from paths import REPO
from wattfleet import sql

LAYERS = {"schema", "staging", "facts", "rollups", "queries", "dataset"}
QUERY_READERS = {"report", "serve", "plan", "disclosure", "summary"}
# Files read by folder (migrations by number, fact steps in name order), not by name.
READ_BY_FOLDER = ("schema/", "facts/")
# Blocks iterated as a whole (each is a report table), not named one by one.
ITERATED = {"queries/report/tables.sql", "queries/report/inventory.sql", "queries/report/data_quality.sql"}
PYTHON_DIRS = ("aggregator", "wattfleet", "exporter", "dashboards")


def _python_source() -> str:
    return "\n".join(p.read_text() for d in PYTHON_DIRS for p in sorted((REPO / d).rglob("*.py")))


def _code_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("--")]


def test_every_folder_is_a_layer():
    folders = {p.relative_to(REPO / "sql") for p in (REPO / "sql").rglob("*") if p.is_dir()
               and "__pycache__" not in p.parts}
    assert {f.parts[0] for f in folders} == LAYERS
    assert {f.parts[1] for f in folders if len(f.parts) == 2 and f.parts[0] == "queries"} == QUERY_READERS
    assert all(len(f.parts) <= 2 for f in folders)
    top_files = {p.name for p in (REPO / "sql").glob("*.sql")}
    assert top_files == {"macros.sql"}  # the formula layer; everything else sits in its layer's folder


def test_every_sql_file_and_block_is_used():
    code = _python_source()
    for path in sql.files():
        if path.startswith(READ_BY_FOLDER):
            continue
        folder, _, name = path.rpartition("/")
        assert path in code or (folder in code and f"{name}" in code), f"sql/{path} is read by no Python module"
        if path in ITERATED:
            continue
        for block in sql.blocks(path):
            assert re.search(rf"[\"#]{block}\"", code), f"sql/{path}: block {block!r} is used nowhere"


def test_no_file_holds_only_one_trivial_line():
    for path in sql.files():
        if path.startswith("schema/"):
            continue  # history: never edited
        text = sql.file_text(path)
        assert len(_code_lines(text)) > 1, f"sql/{path} holds one line: merge it with its related statements"


def test_migrations_are_numbered_and_shipped_unchanged_in_schema():
    names = [Path(p).name for p in sql.files() if p.startswith("schema/")]
    assert names == sorted(names) and [n[:3] for n in names] == [f"{i:03d}" for i in range(1, len(names) + 1)]
