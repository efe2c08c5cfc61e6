"""CPU and DRAM energy from the Linux powercap tree (Intel RAPL, AMD sockets too).

Reads ``<sysfs_root>/class/powercap/intel-rapl:N[:M]/energy_uj`` with our own
wraparound handling through ``max_energy_range_uj``. The sysfs root is
configurable so that tests (and containers mounting the host's /sys
elsewhere) can point it at any tree laid out like /sys.

Since the fix for CVE-2020-8694, ``energy_uj`` is readable by root only; a
zone we cannot read gives a one-line warning, not a crash.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from wattfleet.core import catalog
from wattfleet.exporter.counters import EnergyCounter
from wattfleet.exporter.sensors.base import SensorResult, SensorUnavailable

log = logging.getLogger(__name__)

_ZONE_DIR = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")
CVE_HINT = ("energy_uj is readable by root only since the fix for CVE-2020-8694; run the exporter with "
            "CAP_DAC_READ_SEARCH or as root, or relax the file mode on the host")


@dataclass
class Zone:
    """One powercap zone and the counter that follows it."""

    path: Path
    device: str      # directory name, e.g. intel-rapl:0:1
    socket: str
    domain: str
    counter: EnergyCounter
    readable: bool = True
    power_watts: float | None = None
    _prev_time: float | None = field(default=None, repr=False)


def _read_int(path: Path) -> int:
    with open(path, "rb") as f:
        return int(f.read().strip())


def _domain_of(name: str) -> tuple[str, str | None]:
    """``package-1`` -> (``package``, ``1``); ``dram`` -> (``dram``, None)."""
    m = re.match(r"^(package|psys|core|uncore|dram)(?:-(\d+))?$", name.strip())
    if not m:
        return name.strip(), None
    return m.group(1), m.group(2)


def discover(sysfs_root: str | os.PathLike[str], max_watts: float) -> list[Zone]:
    """Every intel-rapl zone under the root, with wrap ranges read once."""
    base = Path(sysfs_root) / "class" / "powercap"
    if not base.is_dir():
        return []
    zones: list[Zone] = []
    for entry in sorted(base.iterdir(), key=lambda p: p.name):
        m = _ZONE_DIR.match(entry.name)
        if not m:
            continue  # intel-rapl-mmio duplicates the MSR zones; never count both
        try:
            name = (entry / "name").read_text()
            max_range = _read_int(entry / "max_energy_range_uj")
        except (OSError, ValueError) as exc:
            log.warning("powercap zone %s skipped: %s", entry, exc)
            continue
        domain, index = _domain_of(name)
        if domain == "psys":
            socket = "platform"
        elif m.group(2) is None:
            socket = index if index is not None else m.group(1)
        else:
            parent = base / f"intel-rapl:{m.group(1)}"
            try:
                _, parent_index = _domain_of((parent / "name").read_text())
            except OSError:
                parent_index = None
            socket = parent_index if parent_index is not None else m.group(1)
        counter = EnergyCounter(scale=1e-6, wrap_range=max_range + 1, max_watts=max_watts)
        zones.append(Zone(entry, entry.name, socket, domain, counter))
    return zones


class RaplSensor:
    """Samples every readable RAPL zone; unavailable when none can be read."""

    name = "rapl"

    def __init__(self, sysfs_root: str | os.PathLike[str] = "/sys", max_watts: float = 5000.0,
                 rediscover_every: int = 60) -> None:
        self.sysfs_root = Path(sysfs_root)
        self.max_watts = max_watts
        self.rediscover_every = rediscover_every
        self._samples_taken = 0
        self.zones: dict[str, Zone] = {}
        self._warned: set[str] = set()
        for zone in discover(self.sysfs_root, max_watts):
            self.zones[zone.device] = zone
        if not self.zones:
            raise SensorUnavailable(f"no RAPL zones under {self.sysfs_root / 'class' / 'powercap'}")
        readable = [z for z in self.zones.values() if self._probe(z)]
        if not readable:
            raise SensorUnavailable(
                f"RAPL zones found under {self.sysfs_root / 'class' / 'powercap'} but none readable: {CVE_HINT}")

    def _probe(self, zone: Zone) -> bool:
        try:
            _read_int(zone.path / "energy_uj")
            return True
        except PermissionError:
            self._warn_once(zone.device, f"RAPL {zone.device}/energy_uj unreadable: {CVE_HINT}")
            zone.readable = False
            return False
        except (OSError, ValueError):
            return False

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    def energy_counters(self) -> dict[str, EnergyCounter]:
        """Counters by zone directory and domain, for ``--state-file`` (see :mod:`..state`)."""
        return {f"{z.device}/{z.domain}": z.counter for z in self.zones.values()}

    def _rediscover(self) -> None:
        """Pick up zones that appeared since start (module loaded late, hotplug)."""
        for zone in discover(self.sysfs_root, self.max_watts):
            self.zones.setdefault(zone.device, zone)

    def sample(self, now: float) -> SensorResult:
        result = SensorResult()
        self._samples_taken += 1
        if self.rediscover_every and self._samples_taken % self.rediscover_every == 0:
            self._rediscover()
        for zone in self.zones.values():
            self._sample_zone(zone, now, result)
            labels = {"socket": zone.socket, "domain": zone.domain}
            result.add(catalog.CPU_ENERGY.name, zone.counter.joules, method=catalog.METHOD_MEASURED,
                       source="rapl", **labels)
            if zone.power_watts is not None:
                result.add(catalog.CPU_POWER.name, zone.power_watts, method=catalog.METHOD_MEASURED, **labels)
            result.corrections[("rapl", zone.device)] = (zone.counter.wraps, zone.counter.resets)
        return result

    def _sample_zone(self, zone: Zone, now: float, result: SensorResult) -> None:
        try:
            raw = _read_int(zone.path / "energy_uj")
        except PermissionError:
            self._warn_once(zone.device, f"RAPL {zone.device}/energy_uj unreadable: {CVE_HINT}")
            result.errors.append("permission_denied")
            zone.readable, zone.power_watts = False, None
            zone.counter.rebaseline()
            return
        except FileNotFoundError:
            self._warn_once(zone.device + ":gone", f"RAPL zone {zone.device} vanished; its counter is kept")
            result.errors.append("zone_vanished")
            zone.readable, zone.power_watts = False, None
            zone.counter.rebaseline()
            return
        except (OSError, ValueError):
            result.errors.append("read_error")
            zone.power_watts = None
            return
        if not zone.readable:
            # Back after a gap: what flowed meanwhile is unknown, so start afresh.
            zone.readable = True
            self._warned.discard(zone.device)
            self._warned.discard(zone.device + ":gone")
        had_baseline, rejected = zone.counter.has_baseline, zone.counter.rejected
        added = zone.counter.update(raw, now)
        if zone.counter.rejected != rejected:
            self._warn_once(zone.device + ":implausible",
                            f"RAPL {zone.device} read {raw} uJ: more than {self.max_watts:g} W since the last "
                            "sample or negative; rejected, not counted")
            result.errors.append("implausible_reading")
        if had_baseline and zone._prev_time is not None and now > zone._prev_time:
            zone.power_watts = added / (now - zone._prev_time)
        zone._prev_time = now

    def close(self) -> None:
        pass
