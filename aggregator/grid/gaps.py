"""Finding missing hours and filling them by named, configurable rules.

Scope 2 is energy x intensity *per hour*: an hour without intensity cannot
be dropped (its energy would vanish from the total) and must not be guessed
quietly. So every missing hour is listed, every fill is a row with
``filled=True`` and ``fill_rule`` set, and the :class:`GapReport` says what
was filled from what.

Rules, tried in the configured order for each missing hour (a rule that
cannot fill an hour falls through to the next):

``previous_day_same_hour`` (default)
    The observed value 24 hours earlier: intensity follows a daily cycle, so
    yesterday at the same hour is the closest like-for-like hour.
``linear`` (param ``max_gap_hours``, default 24)
    Straight line between the nearest observed hours before and after, when
    they are no more than ``max_gap_hours`` missing hours apart.
``static_annual`` (param ``grams_per_kwh`` to override the table)
    The zone's annual mean from :mod:`.static`. Never for a marginal signal.
``none``
    Leave the hour missing; it is returned in ``GapReport.unfilled``. Must
    be last.

A fill is only ever based on *observed* rows, never on another fill, so a
long outage is not papered over by copying a copy. Rows outside [start, end)
are used as neighbours (yesterday, the next observed hour) but not returned.
A chain item is a rule name or ``{"rule": name, **params}``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.grid.model import IntensityRow, Signal
from wattfleet.aggregator.grid.static import AnnualFactor, annual_factor
from wattfleet.aggregator.grid.timeutil import HOUR, ceil_hour, floor_hour, hours, require_aware

DEFAULT_CHAIN: tuple[str, ...] = ("previous_day_same_hour",)
DEFAULT_LINEAR_MAX_GAP_HOURS = 24
DAY = 24 * HOUR


@dataclass(frozen=True)
class FillStep:
    rule: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fill:
    """One filled hour: the value, the rule, and what it was made from."""

    hour_utc: datetime
    rule: str
    grams_per_kwh: float
    basis: str
    fell_through: tuple[str, ...] = ()  # "rule: why not" for each rule tried before


@dataclass
class GapReport:
    zone: str
    start: datetime
    end: datetime
    expected_hours: int
    observed_hours: int
    missing: list[datetime]
    filled: list[Fill] = field(default_factory=list)
    unfilled: list[datetime] = field(default_factory=list)
    unfilled_reasons: dict[datetime, tuple[str, ...]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.unfilled

    def summary(self) -> str:
        by_rule: dict[str, int] = {}
        for f in self.filled:
            by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
        rules = ", ".join(f"{n} by {r}" for r, n in sorted(by_rule.items())) or "none filled"
        return (f"{self.zone} {self.start.isoformat()}..{self.end.isoformat()}: {self.observed_hours}/"
                f"{self.expected_hours} hours observed, {len(self.missing)} missing ({rules}), "
                f"{len(self.unfilled)} left unfilled")

    def to_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone, "start": self.start.isoformat(), "end": self.end.isoformat(),
            "expected_hours": self.expected_hours, "observed_hours": self.observed_hours,
            "missing": [h.isoformat() for h in self.missing],
            "filled": [{"hour_utc": f.hour_utc.isoformat(), "rule": f.rule, "grams_per_kwh": f.grams_per_kwh,
                        "basis": f.basis, "fell_through": list(f.fell_through)} for f in self.filled],
            "unfilled": [h.isoformat() for h in self.unfilled],
            "unfilled_reasons": {h.isoformat(): list(r) for h, r in self.unfilled_reasons.items()},
            "notes": list(self.notes),
        }


_PARAMS: dict[str, tuple[str, ...]] = {
    "previous_day_same_hour": (),
    "linear": ("max_gap_hours",),
    "static_annual": ("grams_per_kwh",),
    "none": (),
}
RULES = tuple(_PARAMS)


ChainSpec = str | Sequence[str | Mapping[str, Any] | FillStep] | None


def parse_chain(chain: ChainSpec, where: str = "fill") -> list[FillStep]:
    """Validate a configured chain; unknown rules and parameters are errors, not ignored."""
    if chain is None:
        chain = DEFAULT_CHAIN
    if isinstance(chain, str):
        chain = [chain]
    steps: list[FillStep] = []
    for i, item in enumerate(chain):
        if isinstance(item, FillStep):
            rule, params = item.rule, dict(item.params)
        elif isinstance(item, str):
            rule, params = item, {}
        elif isinstance(item, Mapping) and isinstance(item.get("rule"), str):
            rule, params = item["rule"], {k: v for k, v in item.items() if k != "rule"}
        else:
            raise GridDataError("grid spec", None, f"{where}[{i}]",
                                f"expected a rule name or {{'rule': ...}}, got {item!r}")
        if rule not in _PARAMS:
            raise GridDataError("grid spec", None, f"{where}[{i}]", f"unknown fill rule {rule!r}; known: {list(RULES)}")
        unknown = set(params) - set(_PARAMS[rule])
        if unknown:
            raise GridDataError("grid spec", None, f"{where}[{i}]",
                                f"unknown parameter(s) {sorted(unknown)} for {rule!r}; allowed: {list(_PARAMS[rule])}")
        if rule == "linear" and "max_gap_hours" in params:
            gap = params["max_gap_hours"]
            if isinstance(gap, bool) or not isinstance(gap, int) or gap < 1:
                raise GridDataError("grid spec", None, f"{where}[{i}].max_gap_hours",
                                    f"must be an integer >= 1, got {gap!r}")
        if rule == "static_annual" and "grams_per_kwh" in params:
            g = params["grams_per_kwh"]
            if isinstance(g, bool) or not isinstance(g, (int, float)) or g < 0:
                raise GridDataError("grid spec", None, f"{where}[{i}].grams_per_kwh",
                                    f"must be a number >= 0, got {g!r}")
        if rule == "none" and i != len(chain) - 1:
            raise GridDataError("grid spec", None, f"{where}[{i}]", "'none' must be the last rule of the chain")
        steps.append(FillStep(rule, params))
    return steps


@dataclass
class _Context:
    zone: str
    signal: Signal
    observed: dict[datetime, IntensityRow]
    observed_hours: list[datetime]  # sorted
    static_table: Mapping[str, AnnualFactor] | None


# A rule returns (row, basis) when it can fill the hour, or (None, why not).
_Rule = Callable[[datetime, FillStep, _Context], tuple[IntensityRow | None, str]]


def _previous_day(hour: datetime, step: FillStep, ctx: _Context) -> tuple[IntensityRow | None, str]:
    prev = ctx.observed.get(hour - DAY)
    if prev is None:
        return None, f"no observed value at {(hour - DAY).isoformat()}"
    return replace(prev, hour_utc=hour), f"observed {prev.hour_utc.isoformat()}"


def _linear(hour: datetime, step: FillStep, ctx: _Context) -> tuple[IntensityRow | None, str]:
    max_gap = step.params.get("max_gap_hours", DEFAULT_LINEAR_MAX_GAP_HOURS)
    i = bisect.bisect_left(ctx.observed_hours, hour)
    if i == 0 or i == len(ctx.observed_hours):
        return None, "no observed hour on both sides"
    t0, t1 = ctx.observed_hours[i - 1], ctx.observed_hours[i]
    gap = int((t1 - t0) / HOUR) - 1
    if gap > max_gap:
        return None, f"gap of {gap} hours between observed hours exceeds max_gap_hours={max_gap}"
    a, b = ctx.observed[t0], ctx.observed[t1]
    w = (hour - t0) / (t1 - t0)
    value = a.grams_per_kwh + w * (b.grams_per_kwh - a.grams_per_kwh)
    cfe = None
    if a.cfe_ratio is not None and b.cfe_ratio is not None:
        cfe = a.cfe_ratio + w * (b.cfe_ratio - a.cfe_ratio)
    upstream, basis = None, None  # a split (module basis) is interpolated when both ends have one
    if a.upstream_grams_per_kwh is not None and b.upstream_grams_per_kwh is not None:
        upstream = a.upstream_grams_per_kwh + w * (b.upstream_grams_per_kwh - a.upstream_grams_per_kwh)
        basis = "direct"
    elif a.basis == b.basis:
        basis = a.basis
    row = IntensityRow(zone=ctx.zone, hour_utc=hour, grams_per_kwh=value, signal=ctx.signal,
                       source=a.source if a.source == b.source else f"{a.source}+{b.source}", cfe_ratio=cfe,
                       basis=basis, upstream_grams_per_kwh=upstream)
    return row, f"between observed {t0.isoformat()} and {t1.isoformat()}"


def _static_annual(hour: datetime, step: FillStep, ctx: _Context) -> tuple[IntensityRow | None, str]:
    if ctx.signal != "average":
        return None, f"static table holds average intensities, signal is {ctx.signal}"
    stated: str | None = None  # the table's basis for its figure, when it states one (module static)
    if "grams_per_kwh" in step.params:
        value, basis = float(step.params["grams_per_kwh"]), "configured annual factor"
    else:
        try:
            factor = annual_factor(ctx.zone, ctx.static_table)
        except GridDataError:
            return None, f"no annual factor for zone {ctx.zone!r}"
        value, basis = factor.grams_per_kwh, f"annual factor: {factor.basis}"
        stated = factor.intensity_basis
    return IntensityRow(zone=ctx.zone, hour_utc=hour, grams_per_kwh=value, signal="average", source="static",
                        basis=stated), basis


_RULES: dict[str, _Rule] = {
    "previous_day_same_hour": _previous_day,
    "linear": _linear,
    "static_annual": _static_annual,
}


def _index(rows: Iterable[IntensityRow], zone: str | None
           ) -> tuple[dict[datetime, IntensityRow], str | None, Signal | None]:
    observed: dict[datetime, IntensityRow] = {}
    signal: Signal | None = None
    for row in rows:
        if row.filled:
            continue  # fills are never a basis for other fills
        if zone is None:
            zone = row.zone
        elif row.zone != zone:
            raise GridDataError("intensity rows", None, "zone", f"rows mix zones {zone!r} and {row.zone!r}")
        if signal is None:
            signal = row.signal
        elif row.signal != signal:
            raise GridDataError("intensity rows", None, "signal", f"rows mix signals {signal!r} and {row.signal!r}")
        h = row.hour_utc
        if h.tzinfo is None or h.minute or h.second or h.microsecond:
            raise GridDataError("intensity rows", None, "hour_utc", f"not a tz-aware whole hour: {h!r}")
        if h in observed:
            raise GridDataError("intensity rows", None, "hour_utc", f"two rows for {h.isoformat()} in zone {zone}")
        observed[h] = row
    return observed, zone, signal


def find_missing(rows: Iterable[IntensityRow], start: datetime, end: datetime) -> list[datetime]:
    """Hours of [start, end) that no (unfilled) row covers."""
    start, end = floor_hour(require_aware(start, "start")), ceil_hour(require_aware(end, "end"))
    have = {r.hour_utc for r in rows if not r.filled}
    return [h for h in hours(start, end) if h not in have]


def fill_gaps(
    rows: Iterable[IntensityRow],
    start: datetime,
    end: datetime,
    chain: ChainSpec = None,
    zone: str | None = None,
    signal: Signal = "average",
    static_table: Mapping[str, AnnualFactor] | None = None,
) -> tuple[list[IntensityRow], GapReport]:
    """Rows for [start, end), hourly, with missing hours filled by ``chain``.

    ``zone`` and ``signal`` are needed only when ``rows`` is empty. Hours no
    rule could fill are absent from the result and listed in
    ``report.unfilled``.
    """
    steps = parse_chain(chain)
    start, end = floor_hour(require_aware(start, "start")), ceil_hour(require_aware(end, "end"))
    observed, zone_found, signal_found = _index(rows, zone)
    if zone_found is None:
        raise GridDataError("intensity rows", None, "zone", "no rows and no zone given")
    ctx = _Context(zone=zone_found, signal=signal_found or signal, observed=observed,
                   observed_hours=sorted(observed), static_table=static_table)
    wanted = hours(start, end)
    missing = [h for h in wanted if h not in observed]
    report = GapReport(zone=ctx.zone, start=start, end=end, expected_hours=len(wanted),
                       observed_hours=len(wanted) - len(missing), missing=missing)
    made: dict[datetime, IntensityRow] = {}
    for hour in missing:
        tried: list[str] = []
        for step in steps:
            if step.rule == "none":
                tried.append("none: left missing as configured")
                break
            row, basis = _RULES[step.rule](hour, step, ctx)
            if row is None:
                tried.append(f"{step.rule}: {basis}")
                continue
            made[hour] = replace(row, filled=True, fill_rule=step.rule)
            report.filled.append(Fill(hour, step.rule, row.grams_per_kwh, basis, tuple(tried)))
            break
        if hour not in made:
            report.unfilled.append(hour)
            report.unfilled_reasons[hour] = tuple(tried)
    out = [observed[h] if h in observed else made[h] for h in wanted if h in observed or h in made]
    return out, report
