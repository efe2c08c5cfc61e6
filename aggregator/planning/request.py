"""What a plan is asked: run length, IT energy, earliest start, deadline, prices; parsed and checked.

The same parsers serve ``wattfleet plan`` and ``GET /api/plan``, so both
accept the same spellings (6h, 1.2MWh, a date meaning the end of that day).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from wattfleet.aggregator.grid.timeutil import ceil_hour, require_aware
from wattfleet.aggregator.planning.errors import PlanError

UTC = timezone.utc

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)?\s*$", re.I)
_ENERGY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*(wh|kwh|mwh|gwh|j|kj|mj|gj)?\s*$", re.I)
_ENERGY_KWH = {"wh": 1e-3, "kwh": 1.0, "mwh": 1e3, "gwh": 1e6, "j": 1 / 3.6e6, "kj": 1 / 3.6e3,
               "mj": 1 / 3.6, "gj": 1e3 / 3.6}


def parse_duration_hours(text: str) -> float:
    """'6h', '90m', '1.5d', '6' (hours) -> hours; must be > 0."""
    m = _DURATION_RE.match(str(text))
    if not m:
        raise PlanError(f"--duration: not a duration {text!r} (use e.g. 6h, 90m, 1.5d)")
    value, unit = float(m.group(1)), (m.group(2) or "h").lower()
    hours = value / 60.0 if unit in ("m", "min") else value * 24.0 if unit == "d" else value
    if not math.isfinite(hours):
        raise PlanError(f"--duration: not a finite duration {text!r}")
    if hours <= 0:
        raise PlanError(f"--duration: must be > 0, got {text!r}")
    return hours


def parse_energy_kwh(text: str) -> float:
    """'1.2MWh', '800kWh', '5e9J', '300' (kWh) -> kWh; must be > 0."""
    m = _ENERGY_RE.match(str(text))
    if not m:
        raise PlanError(f"--energy: not an energy {text!r} (use e.g. 1.2MWh, 800kWh)")
    kwh = float(m.group(1)) * _ENERGY_KWH[(m.group(2) or "kwh").lower()]
    if not math.isfinite(kwh):  # '1e400' overflows to inf, which no JSON can carry back
        raise PlanError(f"--energy: not a finite energy {text!r}")
    if kwh <= 0:
        raise PlanError(f"--energy: must be > 0, got {text!r}")
    return kwh


def parse_deadline(text: str) -> datetime:
    """A date means the END of that UTC day ("by 2026-11-30" includes the 30th); a timestamp is exact."""
    s = str(text).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        day = _utc_instant(s, "--by", text)
        if day.date() == datetime.max.date():  # its end is past the last representable instant
            raise PlanError(f"--by: out of range: {text!r}")
        return day + timedelta(days=1)
    return _utc_instant(s, "--by", text)


def parse_earliest(text: str) -> datetime:
    """Earliest start: a date means the START of that UTC day; a timestamp is exact (naive = UTC)."""
    return _utc_instant(str(text).strip(), "--after", text)


def _utc_instant(s: str, flag: str, text: str) -> datetime:
    """ISO date or timestamp (``Z`` allowed, naive = UTC) as aware UTC, or a PlanError naming ``flag``."""
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except ValueError:
        raise PlanError(f"{flag}: not a date or ISO timestamp: {text!r}") from None
    except OverflowError:  # e.g. 0001-01-01T00:00-01:00 moved to UTC
        raise PlanError(f"{flag}: out of range: {text!r}") from None


def parse_costs(pairs: Iterable[tuple[str, str]]) -> dict[str, float]:
    """(site, price) pairs -> {site: price per facility kWh}; a price must be a number >= 0."""
    out: dict[str, float] = {}
    for site, price in pairs:
        try:
            value = float(price)
        except ValueError:
            value = -1.0
        if not site.strip() or not value >= 0 or not math.isfinite(value):  # also rejects NaN and inf
            raise PlanError(f"cost {site}={price}: expected SITE and a price >= 0")
        out[site.strip()] = value
    return out


@dataclass(frozen=True)
class PlanRequest:
    duration_hours: float
    it_energy_kwh: float  # what the run's IT equipment draws; PUE is applied per site
    earliest: datetime
    deadline: datetime
    top: int = 10

    def starts(self) -> tuple[datetime, int]:
        """First start hour and how many hourly starts fit before the deadline."""
        first = ceil_hour(require_aware(self.earliest, "earliest"))
        last_end = require_aware(self.deadline, "deadline")
        room = (last_end - first).total_seconds() / 3600.0 - self.duration_hours
        if room < -1e-9:
            raise PlanError(f"a {self.duration_hours:g} h run starting at {first.isoformat()} cannot finish by "
                            f"{last_end.isoformat()}")
        return first, int(math.floor(room + 1e-9)) + 1
