"""Opening the store while another process holds the file: wait within bounds, then say who holds it.

The lock tests hold the file from a real second process.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from fixtures.agg.pipeline import NOW, STATIC_SITE, T0, put_gpu, write_config
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.ingest import run as ing
from wattfleet.aggregator.ingest.embedded import EmbeddedSource
from wattfleet.aggregator.ingest.run import get_watermark, totals
from wattfleet.aggregator.store import connection
from wattfleet.aggregator.store.connection import open_store
from wattfleet.aggregator.store.errors import StoreError, StoreLockedError

HOLDER = ("import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro'); "
          "print('held', flush=True); sys.stdin.read()")


class Holder:
    """A second process holding the database file until released (its stdin closed)."""

    def __init__(self, db: Path, mode: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), mode], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None  # PIPE
        assert self.proc.stdout.readline().strip() == "held"

    def release(self) -> None:
        assert self.proc.stdin is not None  # PIPE
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def test_locked_database_waits_for_the_holder_then_gives_up_clearly(tmp_path):
    db = tmp_path / "wf.duckdb"
    open_store(db).close()
    holder = Holder(db, "ro")  # serve's brief read-only look
    try:
        with pytest.raises(StoreLockedError, match=rf"locked by .*\(PID {holder.proc.pid}\); gave up after 0.3 s"):
            open_store(db, lock_wait_seconds=0.3)
        assert issubclass(StoreLockedError, StoreError) and issubclass(StoreLockedError, duckdb.IOException)
        threading.Timer(0.5, holder.release).start()
        con = open_store(db, lock_wait_seconds=20)  # waits until the reader is done
        assert holder.proc.returncode == 0
        con.close()
    finally:
        if holder.proc.poll() is None:
            holder.release()
    with pytest.raises(duckdb.IOException, match="No such file|directory") as err:  # not a lock: no waiting
        open_store(tmp_path / "missing" / "wf.duckdb", lock_wait_seconds=30)
    assert not isinstance(err.value, StoreLockedError)


def test_cli_commands_report_a_locked_database_without_traceback(tmp_path, capsys, monkeypatch):
    from wattfleet.cli import main
    monkeypatch.setattr(connection, "DEFAULT_LOCK_WAIT_SECONDS", 0.2)
    cfg = write_config(tmp_path, STATIC_SITE)
    db = tmp_path / "wf.duckdb"
    con = open_store(db)
    put_gpu(con, "a-1", T0, 2, 1000)
    ing.ingest(con, load_facility(cfg), EmbeddedSource(con), T0, T0 + timedelta(hours=2), now=NOW)
    con.close()
    holder = Holder(db, "rw")  # a running `aggregate`
    try:
        agg = ["aggregate", "--config", str(cfg), "--db", str(db), "--embedded-targets", "127.0.0.1:1", "--once",
               "--from", "2022-01-02T00:00Z", "--to", "2022-01-02T02:00Z", "--no-progress"]
        assert main(agg) == 2
        err = capsys.readouterr().err
        assert f"wattfleet: {db}: database is locked by" in err and f"(PID {holder.proc.pid})" in err
        assert "Traceback" not in err
        assert main(["report", "--month", "2022-01", "--db", str(db), "--out", str(tmp_path / "r")]) == 1
        err = capsys.readouterr().err
        assert "database is locked by" in err and "Traceback" not in err
    finally:
        holder.release()
    monkeypatch.setattr(connection, "DEFAULT_LOCK_WAIT_SECONDS", 20.0)
    holder = Holder(db, "ro")
    threading.Timer(0.5, holder.release).start()
    assert main(agg) == 0  # the reader lets go within the wait: the run goes ahead
    assert "IT 2.000 kWh" in capsys.readouterr().out
    con = open_store(db, read_only=True)
    assert totals(con)["it_kwh"] == pytest.approx(2.0) and get_watermark(con, "embedded") == T0 + timedelta(hours=2)
    con.close()
