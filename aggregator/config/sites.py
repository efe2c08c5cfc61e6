"""One ``sites:`` entry: grid zone and intensity source, PUE, water, node mapping, overhead, price.

The grid spec is checked only for what the config can know offline (zone
format, that it agrees with the site, relative paths); whether a source
knows a zone is asked of the grid package through ``zone_check``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wattfleet.aggregator.config.checker import Checker, Path_
from wattfleet.aggregator.config.meters import parse_pue
from wattfleet.aggregator.config.model import Site
from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.grid.spec import (
    BASES,
    COMMON_KEYS,
    IMPLAUSIBLE_ACTIONS,
    SOURCE_KEYS,
    SPLITTABLE,
    TIMESTAMP_CONVENTIONS,
    basis,
)

# Zone codes: EIA balancing authorities (CISO), Electricity Maps zones (DE, US-CAL-CISO,
# GB), UK Carbon Intensity regions. Format check here; grid sources check existence.
ZONE_RE = re.compile(r"^[A-Z][A-Z0-9]*([-_][A-Z0-9]+)*$")
SITE_KEYS = {"name", "zone", "grid", "pue", "wue_liters_per_kwh", "offsite_water_liters_per_kwh",
             "residual_mix_grams_per_kwh", "residual_mix_source", "upstream_grams_per_kwh", "nodes", "overhead",
             "cost_per_kwh"}
SITE_REQUIRED = {"name", "zone", "pue", "wue_liters_per_kwh"}
OVERHEAD_KEYS = {"ratio", "watts_per_node"}

# zone_check(grid_spec, zone) -> why the source cannot serve the zone, or None
ZoneCheck = Callable[[dict[str, Any], str], "str | None"]


def parse_site(c: Checker, raw: Any, path: Path_, base: Path, upstream_default: float,
               zone_check: ZoneCheck | None) -> Site | None:
    """The site, or None when a field it cannot do without is invalid (the error is recorded)."""
    d = c.mapping(raw, path, SITE_KEYS, SITE_REQUIRED)
    if d is None:
        return None
    name = c.text(d, "name", path) or ""
    zone = c.text(d, "zone", path) or ""
    if zone and not ZONE_RE.match(zone):
        c.error(path + ("zone",), f"unknown zone {zone!r}: zone codes look like CISO, DE, US-CAL-CISO")
    grid = _grid_spec(c, d.get("grid") or {}, path, base, zone, zone_check)
    pue, meters = parse_pue(c, d.get("pue"), path + ("pue",), base) if "pue" in d else (None, ())
    wue = c.number(d, "wue_liters_per_kwh", path)
    offsite = c.number(d, "offsite_water_liters_per_kwh", path)
    residual = c.number(d, "residual_mix_grams_per_kwh", path)
    residual_source = c.text(d, "residual_mix_source", path)
    if residual_source is not None and residual is None:
        c.error(path + ("residual_mix_source",), "names a source but no residual_mix_grams_per_kwh is given")
    upstream = c.number(d, "upstream_grams_per_kwh", path, default=upstream_default)
    _check_upstream_basis(c, grid, upstream, path if "upstream_grams_per_kwh" in d else ("defaults",))
    nodes = c.text_list(d, "nodes", path)
    cost = c.number(d, "cost_per_kwh", path)
    ratio, watts = _overhead(c, d["overhead"], path + ("overhead",)) if "overhead" in d else (0.0, 0.0)
    if pue is None or wue is None:
        return None
    return Site(name, zone, grid, pue, meters, wue, offsite, residual, upstream if upstream is not None else 0.0,
                tuple(nodes), ratio, watts, cost, residual_source)


def _grid_spec(c: Checker, raw: Any, path: Path_, base: Path, zone: str, zone_check: ZoneCheck | None
               ) -> dict[str, Any]:
    """The site's grid spec with its zone defaulted to the site's and a relative ``path`` made absolute."""
    if not isinstance(raw, dict):
        c.error(path + ("grid",), "must be a mapping (a grid source spec: source, path or url, zone, fill)")
        raw = {}
    grid = dict(raw)
    if not grid:
        c.error(path, "missing required field 'grid' (where hourly intensity for the zone comes from)")
        return grid
    if "source" not in grid:
        c.error(path + ("grid",), "missing required field 'source'")
    gzone = grid.setdefault("zone", zone)
    if gzone != zone:
        c.error(path + ("grid", "zone"), f"grid zone {gzone!r} differs from the site's zone {zone!r}")
    if "path" in grid and not Path(str(grid["path"])).is_absolute():
        grid["path"] = str(base / str(grid["path"]))
    for key, allowed in (("timestamps", TIMESTAMP_CONVENTIONS), ("implausible", IMPLAUSIBLE_ACTIONS),
                         ("basis", BASES)):
        if key not in grid:
            continue
        if key not in SOURCE_KEYS.get(str(grid.get("source")), {key}) | COMMON_KEYS:
            c.error(path + ("grid", key), f"not a setting of grid source {grid.get('source')!r}")
        elif grid[key] not in allowed:
            c.error(path + ("grid", key), f"must be one of {list(allowed)}, got {grid[key]!r}")
    if grid.get("basis") in BASES and grid.get("source") == "electricitymaps":
        try:
            basis(grid)
        except GridDataError as exc:
            c.error(path + ("grid", "basis"), exc.message)
    if "replay_year" in grid:
        ry = grid["replay_year"]
        if isinstance(ry, bool) or not isinstance(ry, int) or not 1990 <= ry <= 2100:
            c.error(path + ("grid", "replay_year"), f"must be a year, got {ry!r}")
    if zone_check is not None and zone:
        problem = zone_check(grid, zone)
        if problem:
            c.error(path + ("zone",), f"unknown zone {zone!r}: {problem}")
    return grid


def _check_upstream_basis(c: Checker, grid: dict[str, Any], upstream: float | None, where: Path_) -> None:
    """An error at the flat upstream factor when the site's grid intensity is life-cycle and cannot be split.

    A life-cycle intensity already holds the upstream emissions of generation; a source that gives the
    generation mix (EIA-930) is split hour by hour and its upstream part replaces the flat factor, but any
    other life-cycle source would have the flat factor added on top: the same emissions counted twice.
    """
    if not upstream or grid.get("source") not in SOURCE_KEYS or grid.get("source") in SPLITTABLE:
        return
    try:
        stated = basis(grid)
    except GridDataError:
        return  # reported at the grid's own key
    if stated == "lifecycle":
        c.error(where + ("upstream_grams_per_kwh",),
                f"{upstream:g} g/kWh of upstream on top of grid source {grid['source']!r}, whose intensity is "
                "life-cycle (basis: lifecycle) and already includes the upstream emissions of generation: "
                "they would be counted twice (docs/accounting.md 5.5). Set the site's upstream_grams_per_kwh "
                "to 0, or use a direct-basis intensity (basis: direct, or emission_factor: direct for "
                "Electricity Maps) if the source gives one")


def _overhead(c: Checker, raw: Any, path: Path_) -> tuple[float, float]:
    """(ratio of IT energy, watts per node) of unmetered overhead; exactly one may be given."""
    o = c.mapping(raw, path, OVERHEAD_KEYS)
    if o is None:
        return 0.0, 0.0
    if len(o) != 1:
        c.error(path, "give exactly one of 'ratio' or 'watts_per_node'")
    ratio = c.number(o, "ratio", path, default=0.0) or 0.0
    watts = c.number(o, "watts_per_node", path, default=0.0) or 0.0
    return ratio, watts
