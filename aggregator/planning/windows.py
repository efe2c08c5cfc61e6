"""Best window and place: rank start hours and sites by expected emissions.

Expected emissions of a run = IT energy x PUE x mean intensity over the run,
where the run draws its energy evenly over ``duration`` hours starting on a
whole UTC hour, so a 6.5 h run weighs its last hour by 0.5. For every start
hour the intensity sum is one subtraction of prefix sums (O(hours) for all
starts together), so a month of hourly starts at many sites is instant.

Intensity comes from the site's grid source. A forecast or a source that
covers the requested hours is used as is ("forecast" mode). Historical files
(the EIA-930 2022 files) cannot know 2026, so "history" mode replays the
requested hours from the latest year the source has, shifted by whole weeks
so weekday and hour of day match (the daily and weekly cycles are what
planning exploits); the plan says so. Marginal intensity is used where the
source gives it (it is the right signal for deciding), average otherwise,
and the plan says which.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from wattfleet.aggregator.grid.eia930 import read_eia930
from wattfleet.aggregator.grid.electricitymaps import load_electricitymaps_csv
from wattfleet.aggregator.grid.model import IntensityRow
from wattfleet.aggregator.grid.sources import load_intensity
from wattfleet.aggregator.grid.timeutil import HOUR, ceil_hour, floor_hour, require_aware

UTC = timezone.utc
WEEK = timedelta(days=7)
MODES = ("auto", "forecast", "history")
# Keys of a site's grid spec that are for the planner/aggregator, not for the loader.
_PLANNER_KEYS = ("replay_year", "marginal")


class PlanError(ValueError):
    """A request or input the planner cannot answer (says which field and why)."""


# --- parsing ---------------------------------------------------------------------------------------------
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
    if hours <= 0:
        raise PlanError(f"--duration: must be > 0, got {text!r}")
    return hours


def parse_energy_kwh(text: str) -> float:
    """'1.2MWh', '800kWh', '5e9J', '300' (kWh) -> kWh; must be > 0."""
    m = _ENERGY_RE.match(str(text))
    if not m:
        raise PlanError(f"--energy: not an energy {text!r} (use e.g. 1.2MWh, 800kWh)")
    kwh = float(m.group(1)) * _ENERGY_KWH[(m.group(2) or "kwh").lower()]
    if kwh <= 0:
        raise PlanError(f"--energy: must be > 0, got {text!r}")
    return kwh


def parse_deadline(text: str) -> datetime:
    """A date means the END of that UTC day ("by 2026-11-30" includes the 30th); a timestamp is exact."""
    s = str(text).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            return datetime.fromisoformat(s).replace(tzinfo=UTC) + timedelta(days=1)
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise PlanError(f"--by: not a date or ISO timestamp: {text!r}") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


# --- the sliding-window core --------------------------------------------------------------------------------
def window_sums(values: Sequence[float], duration_hours: float) -> list[float]:
    """Weighted intensity sum for a run starting at each hour index.

    Entry ``s`` is ``sum(values[s:s+n]) + frac * values[s+n]`` with ``n`` the
    whole hours and ``frac`` the partial last hour of the run. One pass of
    prefix sums: O(len(values)). Only starts whose run fits are returned.
    """
    if duration_hours <= 0:
        raise PlanError(f"duration must be > 0 hours, got {duration_hours}")
    n = int(math.floor(duration_hours + 1e-9))
    frac = duration_hours - n
    if frac < 1e-9:
        frac = 0.0
    span = n + (1 if frac else 0)
    count = len(values) - span + 1
    if count <= 0:
        return []
    prefix = [0.0]
    acc = 0.0
    for v in values:
        acc += v
        prefix.append(acc)
    if frac:
        return [prefix[s + n] - prefix[s] + frac * values[s + n] for s in range(count)]
    return [prefix[s + n] - prefix[s] for s in range(count)]


# --- inputs ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SiteOption:
    """A place the run could go: its grid zone, PUE and (optional) energy price."""

    name: str
    zone: str
    pue: float
    cost_per_kwh: float | None = None  # price per kWh of FACILITY energy, in the config's currency


@dataclass
class HourlySeries:
    """Intensity for consecutive hours from ``start`` (one value per hour, no gaps)."""

    zone: str
    start: datetime
    grams_per_kwh: list[float]
    signal: str = "average"
    source: str = ""
    filled: list[bool] = field(default_factory=list)
    mode: str = "forecast"  # forecast | history
    replayed_from: datetime | None = None  # first data hour used, in history mode

    @property
    def end(self) -> datetime:
        return self.start + HOUR * len(self.grams_per_kwh)

    @classmethod
    def from_rows(cls, rows: Iterable[IntensityRow], start: datetime, end: datetime, **kw: Any) -> "HourlySeries":
        """Series for [start, end) from rows; every hour must be present exactly once per signal."""
        rows = list(rows)
        signals = {r.signal for r in rows}
        signal = "marginal" if "marginal" in signals else "average"
        by_hour = {r.hour_utc: r for r in rows if r.signal == signal}
        values, filled = [], []
        t = start
        zone = rows[0].zone if rows else ""
        while t < end:
            r = by_hour.get(t)
            if r is None:
                raise PlanError(f"zone {zone}: no {signal} intensity for {t.isoformat()}")
            values.append(r.grams_per_kwh)
            filled.append(r.filled)
            t += HOUR
        sources = sorted({r.source for r in by_hour.values() if r.source})
        kw.setdefault("source", ", ".join(sources))
        return cls(zone=kw.pop("zone", zone), start=start, grams_per_kwh=values, signal=signal, filled=filled,
                   **kw)


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


@dataclass(frozen=True)
class Candidate:
    site: str
    zone: str
    start: datetime
    end: datetime
    mean_grams_per_kwh: float
    facility_kwh: float
    kg_co2e: float
    cost: float | None
    signal: str
    filled_hours: int

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "zone": self.zone, "start": _z(self.start), "end": _z(self.end),
                "mean_grams_per_kwh": round(self.mean_grams_per_kwh, 3), "facility_kwh": round(self.facility_kwh, 3),
                "kg_co2e": round(self.kg_co2e, 3), "cost": None if self.cost is None else round(self.cost, 2),
                "signal": self.signal, "filled_hours": self.filled_hours}


@dataclass
class SitePlan:
    site: SiteOption
    series: HourlySeries
    candidates: list[Candidate]

    @property
    def best(self) -> Candidate:
        return min(self.candidates, key=_rank_key)

    @property
    def earliest(self) -> Candidate:
        return self.candidates[0]


@dataclass
class Plan:
    request: PlanRequest
    sites: list[SitePlan]
    ranked: list[Candidate]  # top N over all sites and starts, best first
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> Candidate:
        return self.ranked[0]

    @property
    def baseline(self) -> Candidate:
        """Start as early as possible at the first requested site: what 'not planning' would emit."""
        return self.sites[0].earliest

    def to_json(self) -> dict[str, Any]:
        r = self.request
        base, best = self.baseline, self.best
        return {
            "request": {"duration_hours": r.duration_hours, "it_energy_kwh": r.it_energy_kwh,
                        "earliest": _z(r.earliest), "deadline": _z(r.deadline), "top": r.top},
            "method": "kg = IT kWh x PUE x mean hourly intensity over the run (partial last hour weighted)",
            "sites": [{"site": sp.site.name, "zone": sp.site.zone, "pue": sp.site.pue,
                       "cost_per_kwh": sp.site.cost_per_kwh, "signal": sp.series.signal,
                       "source": sp.series.source, "mode": sp.series.mode,
                       "replayed_from": _z(sp.series.replayed_from) if sp.series.replayed_from else None,
                       "replay_shift_days": _shift_days(sp.series), "starts": len(sp.candidates),
                       "best": sp.best.to_json(), "earliest": sp.earliest.to_json()} for sp in self.sites],
            "ranked": [c.to_json() for c in self.ranked],
            "best": best.to_json(),
            "baseline_earliest_first_site": base.to_json(),
            "saving_kg_co2e": round(base.kg_co2e - best.kg_co2e, 3),
            "saving_ratio": round(1 - best.kg_co2e / base.kg_co2e, 4) if base.kg_co2e > 0 else None,
            "notes": list(self.notes),
        }


def _z(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shift_days(series: HourlySeries) -> int | None:
    if series.replayed_from is None:
        return None
    return int((series.replayed_from - series.start).total_seconds() // 86400)


def _rank_key(c: Candidate) -> tuple[float, datetime, str]:
    # Ties (equal emissions) go to the earlier start, then the site name: deterministic output.
    return (round(c.kg_co2e, 9), c.start, c.site)


# --- ranking ----------------------------------------------------------------------------------------------
def rank_site(request: PlanRequest, site: SiteOption, series: HourlySeries) -> SitePlan:
    """Every hourly start of the request at one site, in start order."""
    first, count = request.starts()
    offset = int((first - series.start).total_seconds() // 3600)
    if offset < 0 or (first - series.start) % HOUR:
        raise PlanError(f"site {site.name}: intensity series starts {series.start.isoformat()}, after the first "
                        f"start hour {first.isoformat()}")
    sums = window_sums(series.grams_per_kwh[offset:], request.duration_hours)
    if len(sums) < count:
        raise PlanError(f"site {site.name}: intensity covers {len(sums)} of {count} start hours "
                        f"(series ends {series.end.isoformat()})")
    facility = request.it_energy_kwh * site.pue
    span = int(math.ceil(request.duration_hours - 1e-9))
    filled = series.filled[offset:] if series.filled else []
    fprefix = [0]
    for f in filled:
        fprefix.append(fprefix[-1] + (1 if f else 0))
    out = []
    for s in range(count):
        mean = sums[s] / request.duration_hours
        start = first + s * HOUR
        nfill = (fprefix[min(s + span, len(filled))] - fprefix[min(s, len(filled))]) if filled else 0
        out.append(Candidate(site.name, site.zone, start, start + timedelta(hours=request.duration_hours), mean,
                             facility, facility * mean / 1000.0,
                             None if site.cost_per_kwh is None else facility * site.cost_per_kwh,
                             series.signal, nfill))
    return SitePlan(site, series, out)


def rank(request: PlanRequest, sites: Sequence[SiteOption], series: Mapping[str, HourlySeries]) -> Plan:
    """Rank every (site, start hour) by expected emissions; ``series`` is keyed by site name."""
    if not sites:
        raise PlanError("no sites to plan for")
    plans = [rank_site(request, s, series[s.name]) for s in sites]
    everything = [c for sp in plans for c in sp.candidates]
    ranked = sorted(everything, key=_rank_key)[: max(1, request.top)]
    notes = []
    signals = {sp.series.signal for sp in plans}
    if len(signals) > 1:
        notes.append("signals differ between sites (" + ", ".join(f"{sp.site.name}: {sp.series.signal}"
                                                                   for sp in plans)
                     + "): marginal and average intensities are not directly comparable")
    for sp in plans:
        if sp.series.mode == "history":
            notes.append(f"{sp.site.name}: HISTORY mode, no intensity for the requested hours; "
                         f"{_z(sp.series.start)}..{_z(sp.series.end)} replayed from "
                         f"{_z(sp.series.replayed_from)} (shifted {-_shift_days(sp.series)} days, whole weeks, "
                         f"same weekday and hour)")
        nfilled = sum(sp.series.filled) if sp.series.filled else 0
        if nfilled:
            notes.append(f"{sp.site.name}: {nfilled} of {len(sp.series.grams_per_kwh)} intensity hours are gap "
                         f"fills, not observations")
    return Plan(request, plans, ranked, notes)


# --- history mode --------------------------------------------------------------------------------------------
def history_offset(start: datetime, end: datetime, data_start: datetime, data_end: datetime) -> timedelta:
    """Whole-week shift mapping [start, end) into [data_start, data_end), in the latest year data has.

    The anchor is the same calendar date in the data's last year, moved to the
    nearest date with the same weekday, then moved back (or forward) a week at
    a time until the window fits the data.
    """
    length = end - start
    if length > data_end - data_start:
        raise PlanError(f"the requested window ({length}) is longer than the data available "
                        f"({data_start.isoformat()}..{data_end.isoformat()})")
    ref_year = (data_end - HOUR).year
    try:
        anchor = start.replace(year=ref_year)
    except ValueError:  # 29 February
        anchor = start.replace(year=ref_year, day=28)
    weeks = round((anchor - start) / WEEK)
    offset = weeks * WEEK
    while start + offset + length > data_end:
        offset -= WEEK
    while start + offset < data_start:
        offset += WEEK
    if start + offset + length > data_end:
        raise PlanError(f"cannot place the requested window inside the data "
                        f"({data_start.isoformat()}..{data_end.isoformat()}) on the same weekday and hour")
    return offset


def _loader_spec(grid: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in grid.items() if k not in _PLANNER_KEYS}


def data_range(spec: Mapping[str, Any], base_dir: str | Path | None = None) -> tuple[datetime, datetime] | None:
    """[first, last + 1 h) of a file-based source; None for APIs and tables (ask them for the window)."""
    source = spec.get("source")
    path = spec.get("path")
    if source not in ("eia930", "electricitymaps") or not path:
        return None
    paths = path if isinstance(path, (list, tuple)) else [path]
    first: datetime | None = None
    last: datetime | None = None
    for p in paths:
        p = Path(p)
        if base_dir is not None and not p.is_absolute():
            p = Path(base_dir) / p
        try:
            st = p.stat()
        except OSError as exc:
            raise PlanError(f"{p}: cannot read intensity file: {exc.strerror or exc}") from None
        key = (str(p.resolve()), st.st_mtime_ns, st.st_size, source)
        if key not in _RANGE_CACHE:
            if source == "eia930":
                parsed = read_eia930(p, spec.get("zone"))
                hours = [r.hour_utc for r in parsed.rows] + [e.hour_utc for e in parsed.empty]
            else:
                hours = [r.hour_utc for r in load_electricitymaps_csv(p, spec.get("zone"))]
            _RANGE_CACHE[key] = (min(hours), max(hours)) if hours else None
        rng = _RANGE_CACHE[key]
        if rng is None:
            continue
        first = rng[0] if first is None else min(first, rng[0])
        last = rng[1] if last is None else max(last, rng[1])
    if first is None or last is None:
        raise PlanError(f"{', '.join(map(str, paths))}: no hours in the file")
    return first, last + HOUR


# File ranges by (path, mtime, size, source): a plan over several sites and a serve endpoint asked
# repeatedly should not re-parse the same year of hourly rows to learn its first and last hour.
_RANGE_CACHE: dict[tuple[str, int, int, str], tuple[datetime, datetime] | None] = {}


Loader = Callable[[Mapping[str, Any], datetime, datetime], list[IntensityRow]]


def _default_loader(base_dir: str | Path | None, now: datetime | None) -> Loader:
    def load(spec: Mapping[str, Any], start: datetime, end: datetime) -> list[IntensityRow]:
        return load_intensity(spec, start, end, now=now, base_dir=base_dir).rows
    return load


def load_site_series(
    grid: Mapping[str, Any], zone: str, start: datetime, end: datetime, *, mode: str = "auto",
    base_dir: str | Path | None = None, now: datetime | None = None, loader: Loader | None = None,
) -> HourlySeries:
    """Intensity for [start, end) from a site's grid spec, replayed from history when needed.

    A ``marginal`` sub-spec in the grid spec (e.g. a WattTime region) is
    preferred for deciding; otherwise the main source's signal is used.
    """
    if mode not in MODES:
        raise PlanError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    start, end = floor_hour(start), ceil_hour(end)
    load = loader or _default_loader(base_dir, now)
    spec = _loader_spec(grid)
    spec.setdefault("zone", zone)
    if isinstance(grid.get("marginal"), Mapping):
        spec = dict(grid["marginal"])
        spec.setdefault("zone", zone)
    rng = data_range(spec, base_dir) if mode != "forecast" else None
    covered = rng is None or (rng[0] <= start and end <= rng[1])
    if mode == "history" and rng is None:
        raise PlanError(f"zone {zone}: history mode needs a file-based source (eia930 or an Electricity Maps "
                        f"CSV), got {spec.get('source')!r}")
    if mode == "forecast" or (mode == "auto" and covered):
        return HourlySeries.from_rows(load(spec, start, end), start, end, zone=zone, mode="forecast")
    assert rng is not None
    offset = history_offset(start, end, rng[0], rng[1])
    rows = load(spec, start + offset, end + offset)
    shifted = HourlySeries.from_rows(rows, start + offset, end + offset, zone=zone)
    shifted.replayed_from = shifted.start
    shifted.start = start
    shifted.mode = "history"
    return shifted


# --- from the facility config -------------------------------------------------------------------------------
def site_options(cfg: Any, names: Sequence[str], costs: Mapping[str, float] | None = None) -> list[SiteOption]:
    """SiteOptions from a FacilityConfig; price from ``costs`` or the site's ``cost_per_kwh`` if configured."""
    out = []
    for name in names:
        site = cfg.sites.get(name)
        if site is None:
            raise PlanError(f"--sites: unknown site {name!r} in {cfg.path} (sites: {', '.join(cfg.sites)})")
        cost = (costs or {}).get(name, getattr(site, "cost_per_kwh", None))
        out.append(SiteOption(name, site.zone, float(site.pue), None if cost is None else float(cost)))
    return out


def plan_facility(
    cfg: Any, site_names: Sequence[str], duration_hours: float, it_energy_kwh: float, deadline: datetime, *,
    earliest: datetime | None = None, mode: str = "auto", top: int = 10, costs: Mapping[str, float] | None = None,
    loader: Loader | None = None,
) -> Plan:
    """Rank starts and sites of a facility config; ``earliest`` defaults to now."""
    now = datetime.now(UTC)
    earliest = require_aware(earliest, "earliest") if earliest is not None else now
    request = PlanRequest(duration_hours, it_energy_kwh, earliest, require_aware(deadline, "deadline"), top)
    first, count = request.starts()
    end = first + timedelta(hours=(count - 1) + duration_hours)
    options = site_options(cfg, site_names, costs)
    base_dir = Path(cfg.path).resolve().parent if getattr(cfg, "path", None) else None
    series = {o.name: load_site_series(cfg.sites[o.name].grid, o.zone, first, end, mode=mode, base_dir=base_dir,
                                       now=now, loader=loader) for o in options}
    return rank(request, options, series)


def parse_earliest(text: str) -> datetime:
    """Earliest start: a date means the START of that UTC day; a timestamp is exact (naive = UTC)."""
    s = str(text).strip()
    try:
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise PlanError(f"--after: not a date or ISO timestamp: {text!r}") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def plan_json(cfg: Any, sites: Sequence[str], duration: str | float, energy: str | float, by: str | datetime, *,
              earliest: str | datetime | None = None, mode: str = "auto", top: int = 10,
              costs: Mapping[str, float] | None = None, loader: Loader | None = None) -> dict[str, Any]:
    """The planner as one JSON-able dict, for ``wattfleet serve`` (``GET /api/plan?...``).

    ``duration`` ('6h' or hours), ``energy`` ('1.2MWh' or kWh of IT energy),
    ``by`` (date = end of that UTC day, or timestamp), ``earliest`` (date =
    start of that day, or timestamp; default now), ``costs`` (price per
    facility kWh by site, over the config's). Errors raise :class:`PlanError`
    (serve answers 400 with its message).
    """
    d = duration if isinstance(duration, (int, float)) else parse_duration_hours(duration)
    e = energy if isinstance(energy, (int, float)) else parse_energy_kwh(energy)
    deadline = by if isinstance(by, datetime) else parse_deadline(by)
    start = parse_earliest(earliest) if isinstance(earliest, str) else earliest
    return plan_facility(cfg, list(sites), float(d), float(e), deadline, earliest=start, mode=mode,
                         top=top, costs=costs, loader=loader).to_json()
