"""Energy counters that survive an exporter restart (``--state-file``).

Without a state file every restart starts the exported counters at 0:
Prometheus copes with the reset, but the energy drawn between the last sample
before the restart and the first one after it is lost. With one, the sampler
saves every energy counter after each sample (total, last raw hardware value,
when that value was read, wraps and resets) *before* it publishes the
snapshot, so no scrape can ever have seen a total larger than the file holds
and a restart never makes a counter go down. The next process seeds its
counters from the file: totals continue, and the first reading is compared
with the saved raw value by :class:`EnergyCounter`'s own wrap/reset logic,
so what RAPL and NVML counted while the exporter was down is added.

Devices are keyed by what identifies them across restarts (RAPL zone, GPU
UUID); a device that is gone is dropped, a new one starts at 0. A changed
boot id means the machine rebooted and the saved raw values mean nothing: a
reset is counted, NVML's counter (millijoules since driver load) is counted
whole, RAPL restarts from its first reading (a warm reboot does not clear the
RAPL registers, so their value need not be energy since boot). Integrated
counters (estimated CPU, GPUs without an energy counter) only continue their
totals: the power while the exporter was down is unknown. A file that cannot
be used gives one warning naming it and a fresh start at 0, as without one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from wattfleet.exporter.counters import EnergyCounter, PowerIntegrator
from wattfleet.exporter.sensors.base import Sensor

log = logging.getLogger(__name__)

STATE_FORMAT = "wattfleet-exporter-state"
STATE_VERSION = 1
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")

Counter = EnergyCounter | PowerIntegrator


class CounterSource(Protocol):
    """A sensor whose energy counters can be saved: ``energy_counters()`` maps a stable device key to each."""

    name: str

    def energy_counters(self) -> dict[str, Counter]:
        ...


class StateError(Exception):
    """The state file cannot be used; the message names the file and the reason."""


@dataclass
class SavedCounter:
    """One counter as saved. ``raw``/``raw_time`` (wall-clock seconds) only for hardware counters."""

    joules: float
    raw: int | None = None
    raw_time: float | None = None
    wraps: int = 0
    resets: int = 0


@dataclass
class SavedState:
    saved_at: float
    boot_id: str | None
    sensors: dict[str, dict[str, SavedCounter]] = field(default_factory=dict)


@dataclass
class RestoreSummary:
    resumed: int = 0
    new: int = 0
    dropped: int = 0
    rebooted: bool = False
    age_seconds: float = 0.0


def read_boot_id(path: str | os.PathLike[str] = BOOT_ID_PATH) -> str | None:
    """This boot's id; None where /proc does not have it (then reboots are not detected)."""
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


# --- encoding -------------------------------------------------------------------
def encode(state: SavedState) -> bytes:
    sensors = {name: {key: {k: v for k, v in c.__dict__.items() if v is not None} for key, c in counters.items()}
               for name, counters in state.sensors.items()}
    doc = {"format": STATE_FORMAT, "version": STATE_VERSION, "saved_at": state.saved_at,
           "boot_id": state.boot_id, "sensors": sensors}
    return json.dumps(doc, sort_keys=True, allow_nan=False).encode()


def _number(value: Any, where: str, integer: bool = False, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value < 0:
        raise StateError(f"{where}: must be a non-negative {'integer' if integer else 'number'}, got {value!r}")
    return value if integer else float(value)


def decode(data: bytes, path: str | os.PathLike[str]) -> SavedState:
    """Parse and check a state file's bytes; StateError naming ``path`` and the field otherwise."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:  # nesting deeper than the parser's stack: not our format
        raise StateError(f"{path}: not a state file (JSON nested too deeply)") from None
    try:
        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
            raise StateError(f"field 'format': not a {STATE_FORMAT} file")
        if doc.get("version") != STATE_VERSION:
            raise StateError(f"field 'version': {doc.get('version')!r}, this exporter reads {STATE_VERSION}")
        boot_id = doc.get("boot_id")
        if boot_id is not None and not isinstance(boot_id, str):
            raise StateError(f"field 'boot_id': must be a string, got {boot_id!r}")
        state = SavedState(_number(doc.get("saved_at"), "field 'saved_at'"), boot_id)
        sensors = doc.get("sensors")
        if not isinstance(sensors, dict):
            raise StateError("field 'sensors': must be an object")
        for name, counters in sensors.items():
            if not isinstance(counters, dict):
                raise StateError(f"field 'sensors.{name}': must be an object")
            out = state.sensors[name] = {}
            for key, c in counters.items():
                where = f"field 'sensors.{name}.{key}"
                if not isinstance(c, dict):
                    raise StateError(f"{where}': must be an object")
                unknown = set(c) - set(SavedCounter.__dataclass_fields__)
                if unknown:
                    raise StateError(f"{where}.{sorted(unknown)[0]}': unknown field")
                out[key] = SavedCounter(
                    _number(c.get("joules"), f"{where}.joules'"),
                    _number(c.get("raw"), f"{where}.raw'", integer=True, optional=True),
                    _number(c.get("raw_time"), f"{where}.raw_time'", optional=True),
                    _number(c.get("wraps", 0), f"{where}.wraps'", integer=True),
                    _number(c.get("resets", 0), f"{where}.resets'", integer=True))
        return state
    except StateError as exc:
        raise StateError(f"{path}: {exc}") from None


MAX_STATE_BYTES = 16 * 1024 * 1024
"""A node's state is a few kilobytes; anything near this is not ours and is not read."""


def read_state_bytes(path: Path) -> bytes:
    """The file's bytes, refusing to follow a symlink (the exporter runs as root) or read a huge file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_STATE_BYTES + 1)
    if len(data) > MAX_STATE_BYTES:
        raise StateError(f"{path}: larger than {MAX_STATE_BYTES} bytes: not a state file")
    return data


def write_atomic(path: Path, data: bytes) -> None:
    """tmp file + fsync + rename (+ fsync of the directory): a crash leaves the old file or the new one.

    The temporary file is created exclusively under an unpredictable name (``mkstemp``: O_CREAT|O_EXCL,
    which never follows a symlink), so a link planted in the directory cannot redirect a root write;
    the rename replaces ``path`` itself, never what a link there points to.
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- counters <-> state ---------------------------------------------------------------
def _sources(sensors: Iterable[Sensor]) -> Iterable[tuple[str, dict[str, Counter], bool]]:
    for sensor in sensors:
        fn = getattr(sensor, "energy_counters", None)
        if fn is not None:
            yield sensor.name, fn(), bool(getattr(sensor, "counters_start_at_zero", False))


def capture(sensors: Iterable[Sensor], now: float, wall_now: float, boot_id: str | None) -> SavedState:
    """Every counter of every sensor as of ``now`` (monotonic) = ``wall_now`` (wall clock)."""
    state = SavedState(wall_now, boot_id)
    for name, counters, _ in _sources(sensors):
        out = state.sensors[name] = {}
        for key, c in counters.items():
            if isinstance(c, EnergyCounter):
                t = c.last_time
                raw_time = wall_now - (now - t) if c.last_raw is not None and t is not None else None
                out[key] = SavedCounter(c.joules, c.last_raw if raw_time is not None else None, raw_time,
                                        c.wraps, c.resets)
            else:
                out[key] = SavedCounter(c.joules)
    return state


def restore(sensors: Iterable[Sensor], saved: SavedState, now: float, wall_now: float,
            boot_id: str | None) -> RestoreSummary:
    """Seed the sensors' counters from ``saved``; ``now``/``wall_now`` are this instant on both clocks."""
    summary = RestoreSummary(rebooted=saved.boot_id is not None and boot_id is not None and saved.boot_id != boot_id,
                             age_seconds=wall_now - saved.saved_at)
    for name, counters, start_at_zero in _sources(sensors):
        previous = saved.sensors.get(name, {})
        summary.dropped += len(set(previous) - set(counters))
        for key, counter in counters.items():
            s = previous.get(key)
            if s is None:
                summary.new += 1
                continue
            summary.resumed += 1
            if isinstance(counter, PowerIntegrator):
                counter.resume(s.joules)
                continue
            raw, resets = s.raw, s.resets
            if summary.rebooted:
                resets += 1
                raw = 0 if start_at_zero else None
            # Wall time since the raw value was read, on this process's monotonic clock.
            age = max(wall_now - (s.raw_time if s.raw_time is not None else saved.saved_at), 0.0)
            counter.resume(s.joules, s.wraps, resets, raw, now - age)
    return summary


class StateFile:
    """Where one exporter keeps its counters; every failure is a warning, never a crash."""

    def __init__(self, path: str | os.PathLike[str],
                 boot_id: str | None | Callable[[], str | None] = read_boot_id) -> None:
        self.path = Path(path)
        self.boot_id = boot_id() if callable(boot_id) else boot_id
        self._write_failed = False
        # The last restore found a file it could not use (counted by the sampler, not only logged).
        self.restore_failed = False

    def restore(self, sensors: Iterable[Sensor], now: float, wall_now: float) -> RestoreSummary | None:
        """Seed counters from the file; None (counters start at 0) when there is none or it is unusable.

        An unusable file also sets ``restore_failed``, which the sampler counts as
        ``collector_errors_total{collector="state_file",reason="restore_failed"}``: the totals restarting at 0 are
        then visible on the metrics page, not only in the log."""
        self.restore_failed = False
        try:
            data = read_state_bytes(self.path)
        except FileNotFoundError:
            log.info("exporter state file %s does not exist yet: counters start at 0", self.path)
            return None
        except StateError as exc:
            self._unusable(str(exc))
            return None
        except OSError as exc:
            self._unusable(f"{self.path} unreadable ({exc})")
            return None
        try:
            saved = decode(data, self.path)
        except StateError as exc:
            self._unusable(str(exc))
            return None
        summary = restore(sensors, saved, now, wall_now, self.boot_id)
        log.info("exporter state file %s: %d counters continued (saved %.1f s ago%s), %d new, %d gone",
                 self.path, summary.resumed, summary.age_seconds,
                 "; machine rebooted since: hardware counters reset" if summary.rebooted else "",
                 summary.new, summary.dropped)
        return summary

    def _unusable(self, why: str) -> None:
        log.warning("exporter state file unusable: %s: counters start at 0", why)
        self.restore_failed = True

    def check_writable(self) -> None:
        """Raise StateError unless the state file can be written now.

        Checked before the first sample: with an unwritable directory the file
        would never follow the counters, and a restart would resume totals below
        what Prometheus has already seen (a counter going backwards, read as a
        reset and counted twice). The exporter refuses to start instead.
        """
        if self.path.is_symlink():
            raise StateError(f"{self.path}: is a symbolic link; the exporter writes state files only itself")
        if self.path.exists() and not self.path.is_file():
            raise StateError(f"{self.path}: exists and is not a regular file")
        try:
            fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".probe")
        except OSError as exc:
            raise StateError(f"{self.path}: directory not writable ({exc.strerror or exc}): "
                             "fix its permissions or leave out --state-file") from None
        os.close(fd)
        os.unlink(name)

    def save(self, sensors: Iterable[Sensor], now: float, wall_now: float) -> bool:
        try:
            write_atomic(self.path, encode(capture(sensors, now, wall_now, self.boot_id)))
        except (OSError, ValueError) as exc:
            if not self._write_failed:
                self._write_failed = True
                # A stale file would restore totals below what Prometheus has seen: a restart
                # would then look like a counter reset and be double counted. Better none at all.
                removed = self._remove()
                log.error("exporter state file %s not written (%s); %s", self.path, exc,
                            "removed the old one: a restart starts counters at 0" if removed
                            else "a restart may resume stale counters")
            return False
        if self._write_failed:
            self._write_failed = False
            log.info("exporter state file %s written again", self.path)
        return True

    def _remove(self) -> bool:
        try:
            self.path.unlink(missing_ok=True)
            return True
        except OSError:
            return False
