"""A database this wattfleet cannot use is refused with exit 2 and a message, never a traceback or a guess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from paths import FACILITY_EXAMPLE
from wattfleet.aggregator.store.connection import open_store
from wattfleet.aggregator.store.errors import StoreError
from wattfleet.aggregator.store.migrations import LATEST_VERSION


def wattfleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wattfleet", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "wattfleet.duckdb"
    path.write_bytes(b"this is not a database\n" * 1000)
    return path


@pytest.fixture
def newer(tmp_path: Path) -> Path:
    path = tmp_path / "newer.duckdb"
    con = open_store(path)
    con.execute("INSERT INTO schema_version VALUES (?, 'from_the_future', now())", [LATEST_VERSION + 1])
    con.close()
    return path


def test_a_corrupt_file_is_a_store_error(corrupt: Path) -> None:
    for read_only in (False, True):
        with pytest.raises(StoreError, match="cannot open as a wattfleet database"):
            open_store(corrupt, read_only=read_only)


def test_a_newer_schema_is_refused_by_readers_too(newer: Path) -> None:
    with pytest.raises(StoreError, match=f"schema version {LATEST_VERSION + 1} is newer"):
        open_store(newer, read_only=True)
    with pytest.raises(StoreError, match="newer"):
        open_store(newer)


@pytest.mark.parametrize("command", ["report", "aggregate"])
def test_the_cli_exits_2_on_a_corrupt_database(corrupt: Path, tmp_path: Path, command: str) -> None:
    args = (["report", "--db", str(corrupt), "--month", "2026-10", "--out", str(tmp_path / "r")]
            if command == "report" else
            ["aggregate", "--db", str(corrupt), "--config", str(FACILITY_EXAMPLE), "--embedded-targets", "127.0.0.1:1",
             "--once", "--no-progress"])
    result = wattfleet(*args)
    assert result.returncode == 2, result.stderr
    assert "cannot open as a wattfleet database" in result.stderr and "Traceback" not in result.stderr


def test_report_exits_2_on_a_newer_schema(newer: Path, tmp_path: Path) -> None:
    result = wattfleet("report", "--db", str(newer), "--month", "2026-10", "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "is newer than this wattfleet" in result.stderr, result.stderr
