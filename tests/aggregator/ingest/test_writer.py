"""Writing telemetry windows: set-based inserts, errors that survive a failed COMMIT.

The full-disk test puts the database on a real, tiny tmpfs (skipped where it cannot be mounted).
"""

from __future__ import annotations

import inspect
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from fixtures.agg.pipeline import STATIC_SITE, T0, put_gpu, write_config
from wattfleet import sql
from wattfleet.aggregator.ingest.run import get_watermark
from wattfleet.aggregator.ingest.telemetry import CollectorErrorRow, EnergyRow, InferenceRow, Telemetry, WorkloadRow
from wattfleet.aggregator.ingest.writer import split_by_hour, write_window
from wattfleet.aggregator.store.connection import open_store
from wattfleet.aggregator.store.transactions import rollback_after_failure, transaction

H1 = T0 + timedelta(hours=1)


def energy(hour: datetime, node: str, joules: float) -> EnergyRow:
    return EnergyRow(hour, node, "c", "s1", "0", "gpu", "gpu", "NVIDIA H100", "measured", joules, "ignored")


def workload(hour: datetime, namespace: str, joules: float) -> WorkloadRow:
    return WorkloadRow(hour, "a-1", "c", "s1", "gpu", namespace, "job/x", "workload", joules, "ignored")


def inference(hour: datetime, phase: str, joules: float, tokens: float) -> InferenceRow:
    return InferenceRow(hour, "a-1", "c", "s1", "vllm", "llama", phase, joules, tokens, "ignored")


def staged(con) -> list[tuple]:
    return con.execute("SELECT * FROM stg_energy_hourly ORDER BY hour_utc, node").fetchall()


def test_write_window_writes_only_its_hour_exactly_and_replaces_it():
    con = open_store(":memory:")
    page = Telemetry([T0, H1], [energy(T0, "a-1", 3.6e6), energy(T0, "a-2", 1.5), energy(H1, "a-1", 7.0)],
                     [inference(T0, "prefill", 10.0, 100.0), inference(H1, "decode", 20.0, 5.0)],
                     workload=[workload(T0, "team-ns", 3.6e6), workload(H1, "team-ns", 7.0)])
    assert write_window(con, "prometheus", T0, page) == 3
    assert con.execute("SELECT * FROM stg_workload_hourly").fetchall() == [
        (T0, "a-1", "c", "s1", "gpu", "team-ns", "job/x", "workload", 3.6e6, "prometheus")]
    assert staged(con) == [
        (T0, "a-1", "c", "s1", "0", "gpu", "gpu", "NVIDIA H100", "measured", 3.6e6, "prometheus"),
        (T0, "a-2", "c", "s1", "0", "gpu", "gpu", "NVIDIA H100", "measured", 1.5, "prometheus")]
    assert con.execute("SELECT * FROM stg_inference_hourly").fetchall() == [
        (T0, "a-1", "c", "s1", "vllm", "llama", "prefill", 10.0, 100.0, "prometheus")]
    assert con.execute("SELECT source, hour_utc, rows FROM ingest_window").fetchall() == [("prometheus", T0, 3)]
    assert get_watermark(con, "prometheus") == H1
    assert con.execute("SELECT month FROM dirty_month").fetchall() == [(T0.date().replace(day=1),)]
    # Re-running the window replaces it exactly; another source's rows and an older window never move
    # the watermark back.
    write_window(con, "embedded", T0, Telemetry([T0], [energy(T0, "b-1", 2.0)], []))
    assert write_window(con, "prometheus", T0, Telemetry([T0], [energy(T0, "a-1", 5.0)], [])) == 1
    assert [(r[1], r[9], r[10]) for r in staged(con)] == [("a-1", 5.0, "prometheus"), ("b-1", 2.0, "embedded")]
    assert con.execute("SELECT count(*) FROM stg_inference_hourly").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM stg_workload_hourly").fetchall() == [(0,)]
    write_window(con, "prometheus", H1, page)
    write_window(con, "prometheus", T0, Telemetry([T0], [], []))  # an hour with no rows is still a window
    assert con.execute("SELECT rows FROM ingest_window WHERE source = 'prometheus' ORDER BY hour_utc"
                       ).fetchall() == [(0,), (2,)]
    assert get_watermark(con, "prometheus") == H1 + timedelta(hours=1)


def test_split_by_hour_groups_a_page_once():
    page = Telemetry([T0, H1], [energy(T0, "a", 1.0), energy(H1, "a", 2.0), energy(T0, "b", 3.0)],
                     [inference(H1, "decode", 1.0, 1.0)])
    by_hour = split_by_hour(page)
    assert sorted(by_hour) == [T0, H1]
    assert [r.node for r in by_hour[T0].energy] == ["a", "b"] and by_hour[T0].inference == []
    assert [r.joules for r in by_hour[H1].energy] == [2.0] and len(by_hour[H1].inference) == 1


def rejected(hour: datetime, node: str, reason: str, readings: float) -> CollectorErrorRow:
    return CollectorErrorRow(hour, node, "c", "s1", "nvml", reason, readings, "ignored")


def test_collector_errors_are_replaced_with_their_window():
    con = open_store(":memory:")
    page = Telemetry([T0, H1], [energy(T0, "a-1", 1.0)], [],
                     [rejected(T0, "a-1", "implausible_reading", 3.0), rejected(H1, "a-1", "timeout", 1.0)])
    by_hour = split_by_hour(page)
    assert [r.reason for r in by_hour[H1].collector_errors] == ["timeout"] and by_hour[H1].energy == []
    write_window(con, "prometheus", T0, by_hour[T0])
    write_window(con, "prometheus", H1, by_hour[H1])
    errors = "SELECT * FROM stg_collector_errors_hourly ORDER BY hour_utc, source"
    assert con.execute(errors).fetchall() == [
        (T0, "a-1", "c", "s1", "nvml", "implausible_reading", 3.0, "prometheus"),
        (H1, "a-1", "c", "s1", "nvml", "timeout", 1.0, "prometheus")]
    # Rewriting a window replaces its rejections exactly (a window with none drops them); other
    # sources and hours are untouched.
    write_window(con, "embedded", T0, Telemetry([T0], [], [], [rejected(T0, "b-1", "read_error", 2.0)]))
    write_window(con, "prometheus", T0, Telemetry([T0], [energy(T0, "a-1", 1.0)], []))
    assert [(r[0], r[1], r[5], r[7]) for r in con.execute(errors).fetchall()] == [
        (T0, "b-1", "read_error", "embedded"), (H1, "a-1", "timeout", "prometheus")]
    with pytest.raises(duckdb.ConstraintException, match="readings"):  # CHECK (readings >= 0): nothing written
        write_window(con, "prometheus", H1, Telemetry([H1], [], [], [rejected(H1, "a-1", "timeout", -1.0)]))
    assert len(con.execute(errors).fetchall()) == 2


def test_window_statements_live_in_sql_files():
    code = inspect.getsource(write_window)
    for word in ("INSERT", "DELETE", "UPDATE"):
        assert word not in code
    for name in ("insert_energy", "insert_inference", "delete_energy", "insert_collector_errors",
                 "delete_collector_errors",
                 "record_window", "advance_watermark", "mark_dirty"):
        assert f'statement("{name}")' in code
        assert sql.load(f"staging/ingest.sql#{name}")
    assert len(sql.statements("staging/ingest.sql#insert_energy")) == 1
    assert sql.load("staging/ingest.sql#insert_energy").count("unnest(") == 9  # set-based: one statement


def test_a_failed_window_leaves_nothing_and_raises_the_original_error():
    con = open_store(":memory:")
    write_window(con, "prometheus", T0, Telemetry([T0], [energy(T0, "a-1", 1.0)], []))
    before = staged(con)
    with pytest.raises(duckdb.ConstraintException, match="joules"):  # CHECK (joules >= 0)
        write_window(con, "prometheus", T0, Telemetry([T0], [energy(T0, "a-1", 2.0), energy(T0, "a-2", -1.0)], []))
    assert staged(con) == before and get_watermark(con, "prometheus") == H1
    rollback_after_failure(con)  # no transaction open: ignored, not raised
    with pytest.raises(ValueError, match="mine"):
        with transaction(con):
            con.execute("DELETE FROM stg_energy_hourly")
            raise ValueError("mine")
    assert staged(con) == before


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 8 MiB tmpfs (needs root); skipped where it cannot be mounted."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(disk: Path, leave: int = 16 << 10) -> Path:
    filler = disk / f"filler-{len(list(disk.glob('filler-*')))}"
    free = shutil.disk_usage(disk).free
    filler.write_bytes(b"\0" * max(free - leave, 0))
    return filler


def test_full_disk_shows_the_real_error_and_the_next_run_completes(tiny_disk, tmp_path, capsys):
    from wattfleet.cli import main
    db = tiny_disk / "wf.duckdb"
    con = open_store(db)
    put_gpu(con, "a-1", T0, 2, 1000)
    con.close()
    filler = fill(tiny_disk)
    # Library: the COMMIT's own error, not "cannot rollback - no transaction is active".
    con = open_store(db)
    rows = [energy(T0, f"n{i}", 1.0) for i in range(20_000)]
    with pytest.raises(duckdb.Error, match="No space left on device") as err:
        write_window(con, "prometheus", T0, Telemetry([T0], rows, []))
    assert "no transaction is active" not in str(err.value)
    assert con.execute("SELECT count(*) FROM ingest_window").fetchall() == [(0,)]  # the window is not there
    con.close()
    # CLI: one line naming the database and the real cause, exit 1, no traceback.
    more = fill(tiny_disk, leave=0)  # the failed WAL was truncated: take the space back
    cfg = write_config(tmp_path, STATIC_SITE)
    args = ["aggregate", "--config", str(cfg), "--db", str(db), "--embedded-targets", "127.0.0.1:1", "--once",
            "--from", "2022-01-02T00:00Z", "--to", "2022-01-02T02:00Z", "--no-progress"]
    assert main(args) == 1
    err_text = capsys.readouterr().err
    assert f"wattfleet: {db}: " in err_text and "No space left on device" in err_text
    assert "Traceback" not in err_text and "no transaction is active" not in err_text
    filler.unlink()  # space freed: the next run completes
    more.unlink()
    assert main(args) == 0
    assert "IT 2.000 kWh" in capsys.readouterr().out
