"""A directory laid out like Linux sysfs powercap, with energy flowing through it.

Builds ``<root>/devices/virtual/powercap/intel-rapl/intel-rapl:N[:M]/`` with
``name``, ``energy_uj``, ``max_energy_range_uj`` and ``enabled``, and the
``<root>/class/powercap/intel-rapl:N[:M]`` symlinks the kernel makes, so that
both our reader and node_exporter's ``--path.sysfs`` read it as they would
read /sys. ``energy_uj`` wraps at ``max_energy_range_uj`` exactly as the
kernel's does; ``true_joules()`` is the ground truth.

Used by tests, benchmarks, the demo and the fleet simulator.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# A common Intel value: 2^32 energy-status units of 61.035 uJ.
DEFAULT_MAX_ENERGY_RANGE_UJ = 262143328850


@dataclass
class FakeZone:
    device: str            # intel-rapl:0 or intel-rapl:0:1
    name: str              # package-0, core, uncore, dram, psys
    path: Path
    max_energy_range_uj: int
    power_watts: float
    joules: float = 0.0
    offset_uj: int = 0     # counter value when the true energy was 0 (or at the last reset)
    reset_at_joules: float = 0.0
    mode: int | None = None  # file mode forced on energy_uj (None: default)

    def raw_uj(self) -> int:
        return (self.offset_uj + int(round((self.joules - self.reset_at_joules) * 1e6))) \
            % (self.max_energy_range_uj + 1)


class FakePowercap:
    """A fake powercap tree under ``root`` (the sysfs root, like ``/sys``).

    ``sockets`` package zones, each with ``subdomains`` children; optional
    psys zone. Energy advances with ``clock`` at each zone's power when
    :meth:`update` runs (or continuously with :meth:`start_writer`).
    """

    def __init__(self, root: str | os.PathLike[str], sockets: int = 2,
                 subdomains: tuple[str, ...] = ("core", "uncore", "dram"), psys: bool = False,
                 max_energy_range_uj: int = DEFAULT_MAX_ENERGY_RANGE_UJ, package_watts: float = 120.0,
                 subdomain_watts: float = 20.0, start_uj: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root = Path(root)
        self.clock = clock
        self.zones: dict[str, FakeZone] = {}
        self._devices = self.root / "devices" / "virtual" / "powercap" / "intel-rapl"
        self._class = self.root / "class" / "powercap"
        self._devices.mkdir(parents=True, exist_ok=True)
        self._class.mkdir(parents=True, exist_ok=True)
        for s in range(sockets):
            self._add(f"intel-rapl:{s}", f"package-{s}", max_energy_range_uj, package_watts, start_uj)
            for i, sub in enumerate(subdomains):
                self._add(f"intel-rapl:{s}:{i}", sub, max_energy_range_uj, subdomain_watts, start_uj)
        if psys:
            self._add(f"intel-rapl:{sockets}", "psys", max_energy_range_uj, package_watts * sockets + 50, start_uj)
        self._last = clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.update()

    def _add(self, device: str, name: str, max_range: int, watts: float, start_uj: int) -> None:
        parts = device.split(":")
        parent = self._devices / ":".join(parts[:2]) if len(parts) == 3 else self._devices
        path = parent / device
        path.mkdir(parents=True, exist_ok=True)
        (path / "name").write_text(name + "\n")
        (path / "max_energy_range_uj").write_text(f"{max_range}\n")
        (path / "enabled").write_text("1\n")
        link = self._class / device
        if not link.is_symlink():
            link.symlink_to(os.path.relpath(path, self._class))
        self.zones[device] = FakeZone(device, name, path, max_range, watts, offset_uj=start_uj % (max_range + 1))

    # --- energy ----------------------------------------------------------
    def update(self) -> None:
        """Advance every zone to ``clock()`` and rewrite its ``energy_uj``."""
        with self._lock:
            now = self.clock()
            dt = max(now - self._last, 0.0)
            self._last = now
            for zone in self.zones.values():
                zone.joules += zone.power_watts * dt
                if zone.path.exists():
                    tmp = zone.path / ".energy_uj.tmp"
                    tmp.write_text(f"{zone.raw_uj()}\n")
                    if zone.mode is not None:
                        tmp.chmod(zone.mode)
                    os.replace(tmp, zone.path / "energy_uj")  # readers never see a half-written value

    def set_power(self, device: str, watts: float) -> None:
        self.update()
        self.zones[device].power_watts = watts

    def true_joules(self, device: str) -> float:
        self.update()
        return self.zones[device].joules

    # --- faults ------------------------------------------------------------
    def reset(self, device: str) -> None:
        """The counter restarts at 0 (module reload) while energy keeps flowing."""
        self.update()
        zone = self.zones[device]
        zone.offset_uj, zone.reset_at_joules = 0, zone.joules
        self.update()

    def make_unreadable(self, device: str) -> None:
        """chmod 000 on energy_uj, as non-root sees it after the CVE-2020-8694 fix."""
        zone = self.zones[device]
        zone.mode = 0
        (zone.path / "energy_uj").chmod(0)

    def remove(self, device: str) -> None:
        """The zone vanishes (driver unloaded)."""
        zone = self.zones[device]
        (self._class / device).unlink(missing_ok=True)
        shutil.rmtree(zone.path, ignore_errors=True)

    def restore(self, device: str) -> None:
        """A removed zone comes back (driver reloaded), its counter where the hardware's count is now.

        Energy kept flowing while it was away, so the first ``energy_uj`` read after
        the return includes the gap: a reader that does not start afresh counts it.
        """
        zone = self.zones[device]
        self._add(device, zone.name, zone.max_energy_range_uj, zone.power_watts, 0)
        self.zones[device] = zone  # keep the energy it has counted, not the fresh zone _add made
        self.update()

    # --- background writer ---------------------------------------------------
    def start_writer(self, period: float = 0.01) -> None:
        """Keep energy_uj files current every ``period`` seconds (for live tests)."""
        def loop() -> None:
            while not self._stop.wait(period):
                self.update()
        self._thread = threading.Thread(target=loop, name="fake-powercap", daemon=True)
        self._thread.start()

    def stop_writer(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
