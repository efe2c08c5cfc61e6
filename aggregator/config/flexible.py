"""``flexible:``: work that may move in time or place, for the shift analysis.

Parsed here with the rest of the config (not in the analysis) so that
loading a config never imports the planner, and the planner reads already
validated :class:`FlexibleWorkload` values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from wattfleet.aggregator.config.model import FlexibleWorkload

KINDS = ("namespace", "team")
FLEXIBLE_KEYS = {"namespace", "team", "window_hours", "allowed_hours_utc", "sites"}


class ShiftConfigError(ValueError):
    """A ``flexible:`` entry that cannot be used (says which one and why)."""


def parse_flexible(items: Any, source: str = "flexible",
                   locate: Callable[[tuple[Any, ...]], str] | None = None) -> list[FlexibleWorkload]:
    """Parse a ``flexible:`` list: ``{namespace|team: glob, window_hours, allowed_hours_utc, sites}``.

    ``locate`` maps a config path such as ``("flexible", 0, "sites")`` to a
    ``file:line: flexible[0].sites`` prefix (the facility loader passes its
    own), so an error names the file, line and field.
    """
    def at(*path: Any) -> str:
        if locate is not None:
            return locate(("flexible",) + path)
        return source + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)

    if not isinstance(items, list):
        raise ShiftConfigError(f"{at()}: must be a list")
    return [_workload(d, lambda *p, i=i: at(i, *p)) for i, d in enumerate(items)]


def _workload(d: Any, at: Callable[..., str]) -> FlexibleWorkload:
    if not isinstance(d, Mapping):
        raise ShiftConfigError(f"{at()}: must be a mapping")
    unknown = set(d) - FLEXIBLE_KEYS
    if unknown:
        raise ShiftConfigError(f"{at()}: unknown key(s) {sorted(unknown)}")
    kinds = [k for k in KINDS if k in d]
    if len(kinds) != 1:
        raise ShiftConfigError(f"{at()}: give exactly one of 'namespace' or 'team'")
    window = d.get("window_hours", 24)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ShiftConfigError(f"{at('window_hours')}: must be a whole number of hours >= 1, got {window!r}")
    allowed = d.get("allowed_hours_utc")
    if allowed is not None:
        if not isinstance(allowed, list) or not all(
                isinstance(h, int) and not isinstance(h, bool) and 0 <= h <= 23 for h in allowed):
            raise ShiftConfigError(f"{at('allowed_hours_utc')}: must be a list of hours 0-23")
        allowed = frozenset(allowed)
    sites = d.get("sites", [])
    if not isinstance(sites, list) or not all(isinstance(s, str) for s in sites):
        raise ShiftConfigError(f"{at('sites')}: must be a list of site names")
    return FlexibleWorkload(kinds[0], str(d[kinds[0]]), window, allowed, tuple(sites))
