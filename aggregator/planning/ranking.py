"""Rank start hours and sites by expected emissions: the sliding-window core.

Expected emissions of a run = IT energy x PUE x mean intensity over the run,
where the run draws its energy evenly over ``duration`` hours starting on a
whole UTC hour, so a 6.5 h run weighs its last hour by 0.5. For every start
hour the intensity sum is one subtraction of prefix sums (O(hours) for all
starts together), so a month of hourly starts at many sites is instant.
Marginal intensity is used where the source gives it (it is the right
signal for deciding), average otherwise, and the plan says which.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from wattfleet.aggregator.grid.timeutil import HOUR
from wattfleet.aggregator.planning.errors import PlanError
from wattfleet.aggregator.planning.request import PlanRequest
from wattfleet.aggregator.planning.series import HourlySeries

UTC = timezone.utc


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


@dataclass(frozen=True)
class SiteOption:
    """A place the run could go: its grid zone, PUE and (optional) energy price."""

    name: str
    zone: str
    pue: float
    cost_per_kwh: float | None = None  # price per kWh of FACILITY energy, in the config's currency


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
        shift_days = _shift_days(sp.series)  # None only outside history mode, which always records the replay
        if sp.series.mode == "history" and shift_days is not None:
            notes.append(f"{sp.site.name}: HISTORY mode, no intensity for the requested hours; "
                         f"{_z(sp.series.start)}..{_z(sp.series.end)} replayed from "
                         f"{_z(sp.series.replayed_from)} (shifted {-shift_days} days, whole weeks, "
                         f"same weekday and hour)")
        nfilled = sum(sp.series.filled) if sp.series.filled else 0
        if nfilled:
            notes.append(f"{sp.site.name}: {nfilled} of {len(sp.series.grams_per_kwh)} intensity hours are gap "
                         f"fills, not observations")
    return Plan(request, plans, ranked, notes)
