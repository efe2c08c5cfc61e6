"""The facility config: everything about sites that telemetry cannot know.

One YAML file describes sites (grid zone and intensity source, PUE, WUE,
node mapping, unmetered overhead, residual mix), Scope 1 sources, market
instruments, embodied carbon and budgets. It is validated completely before
anything is computed, because a wrong PUE or a double-claimed REC silently
corrupts every figure downstream; each error names file, line and field.
See ``facility.example.yaml`` for the documented format.
"""

from __future__ import annotations

import csv
import fnmatch
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from wattfleet.core.yamlpos import YamlPositionError, load_with_lines

UTC = timezone.utc
DIESEL_KG_PER_LITER = 2.68
INSTRUMENT_TYPES = ("ppa", "rec", "go", "green_tariff")
# Zone codes: EIA balancing authorities (CISO), Electricity Maps zones (DE, US-CAL-CISO,
# GB), UK Carbon Intensity regions. Format check here; grid sources check existence.
ZONE_RE = re.compile(r"^[A-Z][A-Z0-9]*([-_][A-Z0-9]+)*$")


class FacilityConfigError(ValueError):
    """Every problem found in a facility config, one per line of the message."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid facility config:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class PueMeter:
    """Metered facility and IT energy for one period [start, end)."""

    start: datetime
    end: datetime
    total_kwh: float
    it_kwh: float

    @property
    def pue(self) -> float:
        return self.total_kwh / self.it_kwh


@dataclass(frozen=True)
class Site:
    name: str
    zone: str
    grid: dict[str, Any]
    pue: float | None
    pue_meter: tuple[PueMeter, ...]
    wue_liters_per_kwh: float
    offsite_water_liters_per_kwh: float | None
    residual_mix_grams_per_kwh: float | None
    upstream_grams_per_kwh: float
    nodes: tuple[str, ...]
    overhead_ratio: float
    overhead_watts_per_node: float
    cost_per_kwh: float | None = None  # energy price per facility kWh, for `wattfleet plan` (any currency)

    def pue_at(self, hour: datetime) -> float:
        for m in self.pue_meter:
            if m.start <= hour < m.end:
                return m.pue
        assert self.pue is not None
        return self.pue


@dataclass(frozen=True)
class Scope1Source:
    site: str
    kind: str  # diesel | refrigerant
    month: date
    quantity: float  # litres or kg
    kg_co2e_per_unit: float  # kgCO2e per litre, or GWP
    label: str = ""

    @property
    def kg_co2e(self) -> float:
        return self.quantity * self.kg_co2e_per_unit


@dataclass(frozen=True)
class Instrument:
    name: str
    type: str
    site: str | None
    market: str | None
    start: datetime
    end: datetime
    mwh: float
    grams_per_kwh: float
    hourly_matched: bool


@dataclass(frozen=True)
class Embodied:
    gpu_model: str | None
    node: str | None
    kg_co2e: float
    life_years: float


@dataclass(frozen=True)
class Budget:
    owner_kind: str  # team | model | site
    owner: str
    month: date
    kg_co2e: float


@dataclass
class FacilityConfig:
    path: str
    sites: dict[str, Site]
    scope1: list[Scope1Source] = field(default_factory=list)
    instruments: list[Instrument] = field(default_factory=list)
    embodied: list[Embodied] = field(default_factory=list)
    budgets: list[Budget] = field(default_factory=list)
    flexible: list[Any] = field(default_factory=list)  # shift.FlexibleWorkload: work that may move in time/place

    def site_for_node(self, node: str, label_site: str = "") -> str | None:
        """Config globs first (in file order), then the exporter's ``site`` label."""
        for site in self.sites.values():
            if any(fnmatch.fnmatchcase(node, pattern) for pattern in site.nodes):
                return site.name
        return label_site if label_site in self.sites else None

    def zones(self) -> list[str]:
        return sorted({s.zone for s in self.sites.values()})


# --- parsing helpers ----------------------------------------------------------
class _Checker:
    """Collects errors with file:line: field prefixes instead of failing at the first."""

    def __init__(self, source: str, lines: dict[tuple[Any, ...], int]) -> None:
        self.source, self.lines, self.problems = source, lines, []
        # Names declared in the file, valid or not: a broken site must not cascade into
        # "unknown site" errors everywhere it is referenced.
        self.declared_sites: set[str] = set()
        self.declared_zones: set[str] = set()

    def where(self, path: tuple[Any, ...]) -> str:
        p = path
        while p and p not in self.lines:
            p = p[:-1]
        line = self.lines.get(p)
        dotted = ".".join(f"[{x}]" if isinstance(x, int) else str(x) for x in path).replace(".[", "[")
        return f"{self.source}:{line}: {dotted or '(top)'}" if line else f"{self.source}: {dotted or '(top)'}"

    def error(self, path: tuple[Any, ...], message: str) -> None:
        self.problems.append(f"{self.where(path)}: {message}")

    def mapping(self, value: Any, path: tuple[Any, ...], allowed: set[str], required: set[str] = frozenset()
                ) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {type(value).__name__}")
            return None
        for key in value:
            if key not in allowed:
                self.error(path + (key,), f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required - set(value)):
            self.error(path, f"missing required field {key!r}")
        return value

    def number(self, d: dict[str, Any], key: str, path: tuple[Any, ...], minimum: float | None = 0.0,
               default: float | None = None, strict_min: bool = False, what: str = "") -> float | None:
        if key not in d or d[key] is None:
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.error(path + (key,), f"must be a number, got {v!r}")
            return default
        v = float(v)
        if v != v or v in (float("inf"), float("-inf")):
            self.error(path + (key,), "must be finite")
            return default
        if minimum is not None and (v < minimum or (strict_min and v == minimum)):
            rel = ">" if strict_min else ">="
            self.error(path + (key,), f"must be {rel} {minimum:g}{what}, got {v:g}")
            return default
        return v

    def text(self, d: dict[str, Any], key: str, path: tuple[Any, ...], default: str | None = None
             ) -> str | None:
        if key not in d or d[key] is None:
            return default
        v = d[key]
        if not isinstance(v, (str, int)) or isinstance(v, bool):
            self.error(path + (key,), f"must be text, got {v!r}")
            return default
        return str(v)

    def text_list(self, d: dict[str, Any], key: str, path: tuple[Any, ...]) -> list[str]:
        v = d.get(key, [])
        if isinstance(v, str):
            return [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.error(path + (key,), "must be a list of text")
            return []
        return v

    def month(self, d: dict[str, Any], key: str, path: tuple[Any, ...]) -> date | None:
        v = self.text(d, key, path)
        if v is None:
            return None
        m = re.fullmatch(r"(\d{4})-(\d{2})", v)
        if not m or not 1 <= int(m.group(2)) <= 12:
            self.error(path + (key,), f"must be a month YYYY-MM, got {v!r}")
            return None
        return date(int(m.group(1)), int(m.group(2)), 1)

    def instant(self, d: dict[str, Any], key: str, path: tuple[Any, ...]) -> datetime | None:
        v = self.text(d, key, path)
        if v is None:
            return None
        try:
            return parse_instant(v)
        except ValueError:
            self.error(path + (key,), f"must be a date YYYY-MM-DD or ISO timestamp, got {v!r}")
            return None


def parse_instant(text: str) -> datetime:
    """YYYY-MM, YYYY-MM-DD or ISO timestamp (naive = UTC) -> aware UTC datetime."""
    s = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}", s):
        s += "-01"
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def month_end(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def _as_dt(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


# --- sections -------------------------------------------------------------------
SITE_KEYS = {"name", "zone", "grid", "pue", "wue_liters_per_kwh", "offsite_water_liters_per_kwh",
             "residual_mix_grams_per_kwh", "upstream_grams_per_kwh", "nodes", "overhead", "cost_per_kwh"}
TOP_KEYS = {"version", "defaults", "sites", "scope1", "instruments", "embodied", "budgets", "flexible"}
DEFAULT_KEYS = {"upstream_grams_per_kwh", "diesel_kg_co2e_per_liter"}

ZoneCheck = Callable[[dict[str, Any], str], str | None]


def _parse_pue(c: _Checker, value: Any, path: tuple[Any, ...], base: Path
               ) -> tuple[float | None, tuple[PueMeter, ...]]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = c.number({"pue": value}, "pue", path[:-1], minimum=1.0, what=" (facility energy >= IT energy)")
        return v, ()
    d = c.mapping(value, path, {"default", "meter", "meter_csv"})
    if d is None:
        return None, ()
    default = c.number(d, "default", path, minimum=1.0, what=" (facility energy >= IT energy)")
    meters: list[PueMeter] = []
    rows: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for i, row in enumerate(d.get("meter") or []):
        rows.append((path + ("meter", i), row))
    if "meter_csv" in d:
        csv_path = base / str(d["meter_csv"])
        try:
            with open(csv_path, newline="") as fh:
                for n, row in enumerate(csv.DictReader(fh), start=2):
                    parsed = {k: _csv_value(v) for k, v in row.items() if k}
                    rows.append((("@csv", str(csv_path), n), parsed))
        except OSError as exc:
            c.error(path + ("meter_csv",), f"cannot read {csv_path}: {exc.strerror or exc}")
    for rpath, row in rows:
        if rpath[0] == "@csv":
            sub = _Checker(rpath[1], {(): rpath[2]})
            sub.problems = c.problems  # one list: csv rows report their own file and line
            rpath_local: tuple[Any, ...] = ()
        else:
            sub, rpath_local = c, rpath
        r = sub.mapping(row, rpath_local, {"month", "hour", "total_kwh", "it_kwh"}, {"total_kwh", "it_kwh"})
        if r is None:
            continue
        total = sub.number(r, "total_kwh", rpath_local)
        it = sub.number(r, "it_kwh", rpath_local, strict_min=True)
        if ("month" in r) == ("hour" in r):
            sub.error(rpath_local, "give exactly one of 'month' (YYYY-MM) or 'hour' (ISO timestamp)")
            start = None
        elif "month" in r:
            m = sub.month(r, "month", rpath_local)
            start, end = (_as_dt(m), _as_dt(month_end(m))) if m else (None, None)
        else:
            start = sub.instant(r, "hour", rpath_local)
            if start is not None and (start.minute or start.second or start.microsecond):
                sub.error(rpath_local + ("hour",), "must be a whole hour")
                start = None
            end = start + timedelta(hours=1) if start else None
        if total is not None and it is not None and total < it:
            sub.error(rpath_local + ("total_kwh",),
                      f"PUE below 1: total {total:g} kWh < IT {it:g} kWh (facility energy includes IT)")
            continue
        if start is not None and total is not None and it is not None and end is not None:
            meters.append(PueMeter(start, end, total, it))
    meters.sort(key=lambda m: m.start)
    for a, b in zip(meters, meters[1:]):
        if b.start < a.end:
            c.error(path, f"meter periods overlap at {b.start.isoformat()}")
    if default is None:
        c.error(path + ("default",), "a constant 'default' PUE is required for hours the meter does not cover")
    return default, tuple(meters)


def _csv_value(v: str | None) -> Any:
    if v is None:
        return None
    try:
        return float(v)
    except ValueError:
        return v.strip()


def _parse_site(c: _Checker, raw: Any, path: tuple[Any, ...], base: Path, upstream_default: float,
                zone_check: ZoneCheck | None) -> Site | None:
    d = c.mapping(raw, path, SITE_KEYS, {"name", "zone", "pue", "wue_liters_per_kwh"})
    if d is None:
        return None
    name = c.text(d, "name", path) or ""
    zone = c.text(d, "zone", path) or ""
    if zone and not ZONE_RE.match(zone):
        c.error(path + ("zone",), f"unknown zone {zone!r}: zone codes look like CISO, DE, US-CAL-CISO")
    grid = d.get("grid") or {}
    if not isinstance(grid, dict):
        c.error(path + ("grid",), "must be a mapping (a grid source spec: source, path or url, zone, fill)")
        grid = {}
    grid = dict(grid)
    if grid:
        if "source" not in grid:
            c.error(path + ("grid",), "missing required field 'source'")
        gzone = grid.setdefault("zone", zone)
        if gzone != zone:
            c.error(path + ("grid", "zone"), f"grid zone {gzone!r} differs from the site's zone {zone!r}")
        if "path" in grid and not Path(str(grid["path"])).is_absolute():
            grid["path"] = str(base / str(grid["path"]))
        if "replay_year" in grid:
            ry = grid["replay_year"]
            if isinstance(ry, bool) or not isinstance(ry, int) or not 1990 <= ry <= 2100:
                c.error(path + ("grid", "replay_year"), f"must be a year, got {ry!r}")
        if zone_check is not None and zone:
            problem = zone_check(grid, zone)
            if problem:
                c.error(path + ("zone",), f"unknown zone {zone!r}: {problem}")
    else:
        c.error(path, "missing required field 'grid' (where hourly intensity for the zone comes from)")
    pue, meters = _parse_pue(c, d.get("pue"), path + ("pue",), base) if "pue" in d else (None, ())
    wue = c.number(d, "wue_liters_per_kwh", path)
    offsite = c.number(d, "offsite_water_liters_per_kwh", path)
    residual = c.number(d, "residual_mix_grams_per_kwh", path)
    upstream = c.number(d, "upstream_grams_per_kwh", path, default=upstream_default)
    nodes = c.text_list(d, "nodes", path)
    cost = c.number(d, "cost_per_kwh", path)
    ratio, watts = 0.0, 0.0
    if "overhead" in d:
        o = c.mapping(d["overhead"], path + ("overhead",), {"ratio", "watts_per_node"})
        if o is not None:
            if len(o) != 1:
                c.error(path + ("overhead",), "give exactly one of 'ratio' or 'watts_per_node'")
            ratio = c.number(o, "ratio", path + ("overhead",), default=0.0) or 0.0
            watts = c.number(o, "watts_per_node", path + ("overhead",), default=0.0) or 0.0
    if pue is None or wue is None:
        return None
    return Site(name, zone, grid, pue, meters, wue, offsite, residual, upstream if upstream is not None else 0.0,
                tuple(nodes), ratio, watts, cost)


def _parse_instruments(c: _Checker, raw: Any, sites: dict[str, Site]) -> list[Instrument]:
    out: list[Instrument] = []
    if not isinstance(raw, list):
        c.error(("instruments",), "must be a list")
        return out
    zones = {s.zone for s in sites.values()}
    spans: list[tuple[Instrument, tuple[Any, ...]]] = []
    for i, item in enumerate(raw):
        p = ("instruments", i)
        d = c.mapping(item, p, {"name", "type", "site", "market", "start", "end", "mwh", "grams_per_kwh",
                                "hourly_matched"}, {"name", "type", "start", "end", "mwh", "grams_per_kwh"})
        if d is None:
            continue
        kind = c.text(d, "type", p) or ""
        if kind and kind not in INSTRUMENT_TYPES:
            c.error(p + ("type",), f"unknown instrument type {kind!r} (one of {', '.join(INSTRUMENT_TYPES)})")
        site, market = c.text(d, "site", p), c.text(d, "market", p)
        if (site is None) == (market is None):
            c.error(p, "give exactly one of 'site' (a site name) or 'market' (a grid zone)")
        if site is not None and site not in c.declared_sites:
            c.error(p + ("site",), f"unknown site {site!r}")
        if market is not None and market not in zones | c.declared_zones:
            c.error(p + ("market",), f"unknown zone {market!r}: no site is in that market "
                                      f"(zones: {', '.join(sorted(zones)) or 'none'})")
        start, end = c.instant(d, "start", p), c.instant(d, "end", p)
        if start and end and end <= start:
            c.error(p + ("end",), "must be after 'start' (periods are [start, end))")
            continue
        mwh = c.number(d, "mwh", p, what=" (energy cannot be negative)")
        factor = c.number(d, "grams_per_kwh", p, what=" (intensity cannot be negative)")
        hourly = d.get("hourly_matched", kind == "ppa")
        if not isinstance(hourly, bool):
            c.error(p + ("hourly_matched",), "must be true or false")
            hourly = False
        if None in (start, end, mwh, factor) or kind not in INSTRUMENT_TYPES or (site is None) == (market is None):
            continue
        inst = Instrument(c.text(d, "name", p) or f"#{i}", kind, site, market, start, end, mwh, factor, hourly)
        out.append(inst)
        spans.append((inst, p))
    # The same MWh must not be claimed twice: no two instruments may cover a site in the same hour.
    for a_i, (a, pa) in enumerate(spans):
        for b, pb in spans[a_i + 1:]:
            a_sites = {a.site} if a.site else {s.name for s in sites.values() if s.zone == a.market}
            b_sites = {b.site} if b.site else {s.name for s in sites.values() if s.zone == b.market}
            if a_sites & b_sites and a.start < b.end and b.start < a.end:
                c.error(pb, f"instrument {b.name!r} overlaps {a.name!r} (line {c.lines.get(pa, '?')}) for site(s) "
                            f"{', '.join(sorted(a_sites & b_sites))} between {max(a.start, b.start).date()} and "
                            f"{min(a.end, b.end).date()}: the same consumption cannot be claimed twice")
    return out


def _parse_scope1(c: _Checker, raw: Any, sites: dict[str, Site], diesel_default: float) -> list[Scope1Source]:
    out: list[Scope1Source] = []
    d = c.mapping(raw, ("scope1",), {"diesel", "refrigerant"})
    if d is None:
        return out
    for kind, keys, req in (("diesel", {"site", "month", "liters", "kg_co2e_per_liter", "label"},
                             {"site", "month", "liters"}),
                            ("refrigerant", {"site", "month", "gas", "kg", "gwp", "label"},
                             {"site", "month", "kg", "gwp"})):
        items = d.get(kind) or []
        if not isinstance(items, list):
            c.error(("scope1", kind), "must be a list")
            continue
        for i, item in enumerate(items):
            p = ("scope1", kind, i)
            r = c.mapping(item, p, keys, req)
            if r is None:
                continue
            site = c.text(r, "site", p)
            if site is not None and site not in c.declared_sites:
                c.error(p + ("site",), f"unknown site {site!r}")
            month = c.month(r, "month", p)
            if kind == "diesel":
                qty = c.number(r, "liters", p, what=" (litres burnt cannot be negative)")
                factor = c.number(r, "kg_co2e_per_liter", p, default=diesel_default)
                label = c.text(r, "label", p, "diesel") or "diesel"
            else:
                qty = c.number(r, "kg", p, what=" (refrigerant mass cannot be negative)")
                factor = c.number(r, "gwp", p)
                label = c.text(r, "gas", p) or c.text(r, "label", p, "refrigerant") or "refrigerant"
            if site in sites and month and qty is not None and factor is not None:
                out.append(Scope1Source(site, kind, month, qty, factor, label))
    return out


def _parse_embodied(c: _Checker, raw: Any) -> list[Embodied]:
    out: list[Embodied] = []
    if not isinstance(raw, list):
        c.error(("embodied",), "must be a list")
        return out
    for i, item in enumerate(raw):
        p = ("embodied", i)
        d = c.mapping(item, p, {"gpu_model", "node", "kg_co2e", "life_years"}, {"kg_co2e", "life_years"})
        if d is None:
            continue
        gm, node = c.text(d, "gpu_model", p), c.text(d, "node", p)
        if (gm is None) == (node is None):
            c.error(p, "give exactly one of 'gpu_model' (glob on the GPU model label) or 'node' (glob on node)")
        kg = c.number(d, "kg_co2e", p)
        life = c.number(d, "life_years", p, strict_min=True)
        if kg is not None and life is not None and (gm is None) != (node is None):
            out.append(Embodied(gm, node, kg, life))
    return out


def _parse_budgets(c: _Checker, raw: Any, sites: dict[str, Site]) -> list[Budget]:
    out: list[Budget] = []
    if not isinstance(raw, list):
        c.error(("budgets",), "must be a list")
        return out
    for i, item in enumerate(raw):
        p = ("budgets", i)
        d = c.mapping(item, p, {"team", "model", "site", "month", "kg_co2e"}, {"month", "kg_co2e"})
        if d is None:
            continue
        owners = [k for k in ("team", "model", "site") if k in d]
        if len(owners) != 1:
            c.error(p, "give exactly one of 'team', 'model' or 'site'")
            continue
        owner = c.text(d, owners[0], p) or ""
        if owners[0] == "site" and owner not in c.declared_sites:
            c.error(p + ("site",), f"unknown site {owner!r}")
        month, kg = c.month(d, "month", p), c.number(d, "kg_co2e", p)
        if month and kg is not None:
            out.append(Budget(owners[0], owner, month, kg))
    return out


def load_facility(path: str | Path, zone_check: ZoneCheck | None = None) -> FacilityConfig:
    """Read and validate a facility config; raises :class:`FacilityConfigError` listing every problem.

    ``zone_check(grid_spec, zone)`` may return a reason when the grid source
    does not know the zone (the grid package supplies one).
    """
    source = str(path)
    try:
        data, lines = load_with_lines(path)
    except YamlPositionError as exc:
        raise FacilityConfigError([str(exc)]) from None
    c = _Checker(source, lines)
    base = Path(path).resolve().parent
    top = c.mapping(data, (), TOP_KEYS, {"sites"})
    if top is None:
        raise FacilityConfigError(c.problems)
    version = top.get("version", 1)
    if version != 1:
        c.error(("version",), f"unsupported version {version!r} (this wattfleet reads version 1)")
    defaults = c.mapping(top.get("defaults") or {}, ("defaults",), DEFAULT_KEYS) or {}
    upstream_default = c.number(defaults, "upstream_grams_per_kwh", ("defaults",), default=0.0) or 0.0
    diesel_default = c.number(defaults, "diesel_kg_co2e_per_liter", ("defaults",),
                              default=DIESEL_KG_PER_LITER) or DIESEL_KG_PER_LITER
    sites: dict[str, Site] = {}
    raw_sites = top.get("sites")
    if not isinstance(raw_sites, list) or not raw_sites:
        c.error(("sites",), "must be a non-empty list of sites")
        raw_sites = []
    for raw in raw_sites:
        if isinstance(raw, dict):
            c.declared_sites.add(str(raw.get("name")))
            c.declared_zones.add(str(raw.get("zone")))
    for i, raw in enumerate(raw_sites):
        site = _parse_site(c, raw, ("sites", i), base, upstream_default, zone_check)
        if site is None:
            continue
        if site.name in sites:
            c.error(("sites", i, "name"), f"site {site.name!r} defined twice")
        sites[site.name] = site
    cfg = FacilityConfig(source, sites)
    if "instruments" in top:
        cfg.instruments = _parse_instruments(c, top["instruments"], sites)
    if "scope1" in top:
        cfg.scope1 = _parse_scope1(c, top["scope1"], sites, diesel_default)
    if "embodied" in top:
        cfg.embodied = _parse_embodied(c, top["embodied"])
    if "budgets" in top:
        cfg.budgets = _parse_budgets(c, top["budgets"], sites)
    if "flexible" in top:
        from wattfleet.aggregator.planning.shift import ShiftConfigError, parse_flexible
        try:
            cfg.flexible = parse_flexible(top["flexible"], locate=c.where)
        except ShiftConfigError as exc:
            c.problems.append(str(exc))
        for i, fw in enumerate(cfg.flexible):
            for s in fw.sites:
                if s not in c.declared_sites:
                    c.error(("flexible", i, "sites"), f"unknown site {s!r}")
    if c.problems:
        raise FacilityConfigError(c.problems)
    return cfg
