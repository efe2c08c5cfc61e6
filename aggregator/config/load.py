"""Read and validate a facility config file into a :class:`FacilityConfig`.

One YAML file describes sites (grid zone and intensity source, PUE, WUE,
node mapping, unmetered overhead, residual mix), Scope 1 sources, market
instruments, embodied carbon, budgets, flexible work and the workload-to-team mapping. It is validated
completely before anything is computed, because a wrong PUE or a
double-claimed REC silently corrupts every figure downstream; each error
names file, line and field. See ``facility.example.yaml`` (next to this
module) for the documented format.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from wattfleet.aggregator.config.checker import Checker, FacilityConfigError
from wattfleet.aggregator.config.flexible import ShiftConfigError, parse_flexible
from wattfleet.aggregator.config.instruments import parse_instruments
from wattfleet.aggregator.config.model import DIESEL_KG_PER_LITER, FacilityConfig, FlexibleWorkload, Site
from wattfleet.aggregator.config.sections import parse_budgets, parse_embodied, parse_scope1, parse_teams
from wattfleet.aggregator.config.sites import ZoneCheck, parse_site
from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.grid.spec import DEFAULT_IMPLAUSIBLE, DEFAULT_TIMESTAMPS, SOURCE_KEYS, basis
from wattfleet.aggregator.store.settings import StoreSettings
from wattfleet.core.yamlpos import YamlPositionError, load_with_lines

TOP_KEYS = {"version", "defaults", "sites", "scope1", "instruments", "embodied", "budgets", "flexible", "store",
            "teams"}
STORE_KEYS = {"memory_limit", "threads", "temp_directory"}
DEFAULT_KEYS = {"upstream_grams_per_kwh", "diesel_kg_co2e_per_liter", "max_pue"}


def load_facility(path: str | Path, zone_check: ZoneCheck | None = None) -> FacilityConfig:
    """Read and validate a facility config; raises :class:`FacilityConfigError` listing every problem.

    ``zone_check(grid_spec, zone)`` may return a reason when the grid source
    does not know the zone (the grid package supplies one).
    """
    try:
        data, lines = load_with_lines(path)
    except YamlPositionError as exc:
        raise FacilityConfigError([str(exc)]) from None
    c = Checker(str(path), lines)
    top = c.mapping(data, (), TOP_KEYS, {"sites"})
    if top is None:
        raise FacilityConfigError(c.problems)
    version = top.get("version", 1)
    if version != 1:
        c.error(("version",), f"unsupported version {version!r} (this wattfleet reads version 1)")
    upstream_default, diesel_default = _defaults(c, top.get("defaults") or {})
    sites = _sites(c, top.get("sites"), Path(path).resolve().parent, upstream_default, zone_check)
    cfg = FacilityConfig(str(path), sites, sha256=_sha256(path))
    if "instruments" in top:
        cfg.instruments = parse_instruments(c, top["instruments"], sites)
    if "scope1" in top:
        cfg.scope1 = parse_scope1(c, top["scope1"], sites, diesel_default)
    if "embodied" in top:
        cfg.embodied = parse_embodied(c, top["embodied"])
    if "budgets" in top:
        cfg.budgets = parse_budgets(c, top["budgets"])
    if "flexible" in top:
        cfg.flexible = _flexible(c, top["flexible"])
    if "teams" in top:
        cfg.teams = parse_teams(c, top["teams"])
    if "store" in top:
        cfg.store = _store(c, top["store"], Path(path).resolve().parent)
    if c.problems:
        raise FacilityConfigError(c.problems)
    return cfg


def _store(c: Checker, raw: Any, base: Path) -> StoreSettings:
    """DuckDB's memory limit, threads and spill directory (``aggregate``'s ``--duckdb-*`` flags win)."""
    store = c.mapping(raw, ("store",), STORE_KEYS) or {}
    memory = c.text(store, "memory_limit", ("store",))
    threads = c.number(store, "threads", ("store",), minimum=1, default=None)
    temp = c.text(store, "temp_directory", ("store",))
    if threads is not None and threads != int(threads):
        c.error(("store", "threads"), f"{threads} is not a whole number")
        threads = None
    try:
        return StoreSettings(memory, int(threads) if threads is not None else None,
                             str(base / temp) if temp else None)
    except ValueError as exc:
        c.error(("store", "memory_limit"), str(exc))
        return StoreSettings()


def _sha256(path: str | Path) -> str:
    """The config file's SHA-256: the version a report states, so a figure can be traced to its config."""
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _defaults(c: Checker, raw: Any) -> tuple[float, float]:
    """(upstream g/kWh, diesel kgCO2e per litre) that entries fall back to."""
    defaults = c.mapping(raw, ("defaults",), DEFAULT_KEYS) or {}
    upstream = c.number(defaults, "upstream_grams_per_kwh", ("defaults",), default=0.0) or 0.0
    c.max_pue = c.number(defaults, "max_pue", ("defaults",), minimum=1.0, default=c.max_pue) or c.max_pue
    diesel = c.number(defaults, "diesel_kg_co2e_per_liter", ("defaults",),
                      default=DIESEL_KG_PER_LITER) or DIESEL_KG_PER_LITER
    return upstream, diesel


def _sites(c: Checker, raw_sites: Any, base: Path, upstream_default: float, zone_check: ZoneCheck | None
           ) -> dict[str, Site]:
    """Valid sites by name; every declared name and zone is noted first, so references to a broken
    site are not also reported as unknown."""
    if not isinstance(raw_sites, list) or not raw_sites:
        c.error(("sites",), "must be a non-empty list of sites")
        raw_sites = []
    for raw in raw_sites:
        if isinstance(raw, dict):
            c.declared_sites.add(str(raw.get("name")))
            c.declared_zones.add(str(raw.get("zone")))
    sites: dict[str, Site] = {}
    first_in_zone: dict[str, tuple[int, Site]] = {}
    for i, raw in enumerate(raw_sites):
        site = parse_site(c, raw, ("sites", i), base, upstream_default, zone_check)
        if site is None:
            continue
        if site.name in sites:
            c.error(("sites", i, "name"), f"site {site.name!r} defined twice")
        sites[site.name] = site
        _check_zone_grid(c, first_in_zone, i, site)
    return sites


def _check_zone_grid(c: Checker, first_in_zone: dict[str, tuple[int, Site]], i: int, site: Site) -> None:
    """An error at a site whose grid settings differ from those of the first site in its zone.

    Intensity is loaded and stored once per zone and hour, so one zone cannot follow two sources or two
    fill orders; rather than take the first site's settings silently, the config says which sites disagree.
    ``marginal`` is left out: it is a planning-only source, read per site.
    """
    first = first_in_zone.setdefault(site.zone, (i, site))
    if first[1] is site or _accounting_grid(first[1].grid) == _accounting_grid(site.grid):
        return
    j, other = first
    c.error(("sites", i, "grid"), f"site {site.name!r} is in zone {site.zone} like site {other.name!r} "
                                  f"({c.where(('sites', j, 'grid'))}) but its grid settings differ; "
                                  "a zone has one hourly intensity, so its sites must give the same grid settings")


def _accounting_grid(grid: dict[str, Any]) -> dict[str, Any]:
    """The settings that decide the zone's hourly intensity, defaults spelled out (``timestamps``,
    ``implausible``), so leaving a default out and writing it agree."""
    out = {k: v for k, v in grid.items() if k != "marginal"}
    source = str(out.get("source"))
    if source in DEFAULT_TIMESTAMPS:
        out.setdefault("timestamps", DEFAULT_TIMESTAMPS[source])
    if "implausible" in SOURCE_KEYS.get(source, ()):
        out.setdefault("implausible", DEFAULT_IMPLAUSIBLE)
    if source in SOURCE_KEYS:
        try:
            out["basis"] = basis(out)
        except GridDataError:
            pass  # reported at the site's grid.basis
    return out


def _flexible(c: Checker, raw: Any) -> list[FlexibleWorkload]:
    """Flexible workloads; the first malformed entry is reported, then unknown sites of the rest."""
    try:
        flexible = parse_flexible(raw, locate=c.where)
    except ShiftConfigError as exc:
        c.problems.append(str(exc))
        return []
    for i, fw in enumerate(flexible):
        for s in fw.sites:
            if s not in c.declared_sites:
                c.error(("flexible", i, "sites"), f"unknown site {s!r}")
    return flexible
