"""The state file against hostile or broken disks: deep JSON, symlinks, unwritable directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wattfleet.exporter.counters import EnergyCounter
from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.state import StateError, StateFile, write_atomic


class OneCounter:
    name = "fake"

    def __init__(self) -> None:
        self.counter = EnergyCounter(scale=1.0)

    def energy_counters(self) -> dict[str, EnergyCounter]:
        return {"dev": self.counter}

    def sample(self, now: float):
        from wattfleet.exporter.sensors.base import SensorResult
        self.counter.update(int(now * 100), now)
        return SensorResult()

    def close(self) -> None:
        pass


def test_deeply_nested_json_is_refused_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    state = StateFile(path)
    assert state.restore([OneCounter()], 0.0, 0.0) is None and state.restore_failed


def test_an_unusable_state_file_is_counted_not_only_logged(tmp_path: Path) -> None:
    """Totals restarting at 0 show on the metrics page (collector_errors_total), like a failed write."""
    path = tmp_path / "state.json"
    path.write_text('{"format": "something else"}')
    sampler = Sampler([OneCounter()], interval=1.0, clock=lambda: 1.0, state=StateFile(path))
    body = sampler.sample_once().body.decode()
    assert sampler.errors[("state_file", "restore_failed")] == 1
    assert 'collector="state_file"' in body and 'reason="restore_failed"' in body
    # a missing file is the first start, not a fault
    fresh = Sampler([OneCounter()], interval=1.0, clock=lambda: 1.0, state=StateFile(tmp_path / "none.json"))
    assert fresh.errors.get(("state_file", "restore_failed"), 0) == 0


def test_a_symlinked_state_file_is_neither_followed_nor_accepted(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("do not touch\n")
    path = tmp_path / "state.json"
    path.symlink_to(secret)
    state = StateFile(path)
    with pytest.raises(StateError, match="symbolic link"):
        state.check_writable()
    assert state.restore([OneCounter()], 0.0, 0.0) is None      # O_NOFOLLOW: not read through the link
    assert secret.read_text() == "do not touch\n"


def test_a_planted_temporary_link_cannot_redirect_the_write(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("root-owned file\n")
    path = tmp_path / "state.json"
    for pid in range(os.getpid() - 5, os.getpid() + 5):      # the old predictable name, for nearby pids
        (tmp_path / f".state.json.{pid}.tmp").symlink_to(victim)
    write_atomic(path, b'{"x": 1}')
    assert victim.read_text() == "root-owned file\n"
    assert json.loads(path.read_text()) == {"x": 1}


def test_an_unwritable_state_directory_stops_start_up(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(StateError, match="not writable"):
        StateFile(not_a_dir / "state.json").check_writable()
    cli = subprocess.run([sys.executable, "-m", "wattfleet", "exporter", "--sysfs-root", str(tmp_path),
                          "--state-file", str(not_a_dir / "state.json"), "--listen-address", "127.0.0.1:0"],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2 and "not writable" in cli.stderr and "Traceback" not in cli.stderr


def test_a_failing_write_at_run_time_is_counted(tmp_path: Path) -> None:
    d = tmp_path / "state"
    d.mkdir()
    now = [1.0]
    sampler = Sampler([OneCounter()], interval=1.0, clock=lambda: now[0], state=StateFile(d / "state.json"))
    sampler.sample_once()
    assert sampler.errors.get(("state_file", "write_failed"), 0) == 0
    (d / "state.json").unlink()
    d.rmdir()                                                   # the directory is gone
    now[0] += 1
    body = sampler.sample_once().body.decode()
    assert sampler.errors[("state_file", "write_failed")] == 1
    assert 'collector="state_file"' in body and 'reason="write_failed"' in body
