"""The ``/api/plan`` query string, parsed and held to :class:`PlanLimits` before any work starts.

Everything that can make a plan expensive is checked here, in the request
thread and without touching a grid source: text lengths, the number of
distinct sites (repeats are dropped, keeping the first), run length, energy
and prices (finite, in range), and how many hourly starts the window holds.
A violation is a :class:`PlanError` naming the parameter (a 400).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qs

from wattfleet.aggregator.planning.errors import PlanError
from wattfleet.aggregator.planning.limits import PlanLimits
from wattfleet.aggregator.planning.request import (
    PlanRequest,
    parse_costs,
    parse_deadline,
    parse_duration_hours,
    parse_earliest,
    parse_energy_kwh,
)
from wattfleet.aggregator.planning.series import MODES

PLAN_PARAMS = ("duration", "energy", "sites", "by", "after", "mode", "top", "cost")
REQUIRED_PARAMS = ("duration", "energy", "sites", "by")
SCALAR_PARAMS = ("duration", "energy", "by", "after", "mode", "top")


@dataclass(frozen=True)
class PlanQuery:
    """A checked ``/api/plan`` request: distinct sites in asked order, parsed quantities."""

    sites: tuple[str, ...]
    duration_hours: float
    energy_kwh: float
    deadline: datetime
    earliest: datetime | None
    mode: str = "auto"
    top: int = 10
    costs: dict[str, float] = field(default_factory=dict)


def parse_plan_query(query: str, limits: PlanLimits, now: datetime) -> PlanQuery:
    """``duration=6h&energy=1.2MWh&sites=a,b&by=2026-11-30[&after=..&mode=..&top=..&cost=SITE:PRICE]``.

    ``now`` is the default earliest start, for counting the starts the window holds.
    """
    if len(query) > limits.max_query_chars:
        raise PlanError(f"query string: {len(query)} characters, at most {limits.max_query_chars}")
    try:
        q = parse_qs(query, keep_blank_values=True, max_num_fields=limits.max_list_items + len(PLAN_PARAMS))
    except ValueError:
        raise PlanError(f"query string: more than {limits.max_list_items + len(PLAN_PARAMS)} parameters") from None
    _check_names(q)
    one = {k: v[-1] for k, v in q.items()}
    for name in SCALAR_PARAMS:
        if len(one.get(name, "")) > limits.max_value_chars:
            raise PlanError(f"{name}: longer than {limits.max_value_chars} characters")
    mode = one.get("mode", "auto")
    if mode not in MODES:
        raise PlanError(f"--mode must be one of {', '.join(MODES)}, got {mode[:limits.max_value_chars]!r}")
    sites = _sites(one["sites"], limits)
    costs = _costs(q.get("cost", []), limits)
    duration = parse_duration_hours(one["duration"])
    if duration > limits.max_duration_hours:
        raise PlanError(f"duration: at most {limits.max_duration_hours:g} h, got {duration:g} h")
    energy = parse_energy_kwh(one["energy"])
    if energy > limits.max_energy_kwh:
        raise PlanError(f"energy: at most {limits.max_energy_kwh:g} kWh of IT energy, got {energy:g} kWh")
    deadline = parse_deadline(one["by"])
    earliest = parse_earliest(one["after"]) if "after" in one else None
    top = _top(one.get("top", "10"), limits)
    _check_starts(PlanRequest(duration, energy, earliest or now, deadline, top), limits)
    return PlanQuery(sites, duration, energy, deadline, earliest, mode, top, costs)


def _check_names(q: dict[str, list[str]]) -> None:
    unknown = sorted(set(q) - set(PLAN_PARAMS))
    if unknown:
        shown = [name[:32] for name in unknown[:8]]  # echo a bounded amount of what was sent
        raise PlanError(f"unknown query parameter(s) {shown} (known: {', '.join(PLAN_PARAMS)})")
    for name in REQUIRED_PARAMS:
        if not q.get(name) or not q[name][0].strip():
            raise PlanError(f"missing query parameter {name!r}")


def _sites(text: str, limits: PlanLimits) -> tuple[str, ...]:
    """Distinct site names in asked order: ``a,b,a`` plans a and b once each."""
    items = text.split(",")
    if len(items) > limits.max_list_items:
        raise PlanError(f"sites: more than {limits.max_list_items} names")
    distinct: dict[str, None] = {}
    for item in items:
        name = item.strip()
        if len(name) > limits.max_name_chars:
            raise PlanError(f"sites: a name longer than {limits.max_name_chars} characters")
        if name:
            distinct[name] = None
    if len(distinct) > limits.max_sites:
        raise PlanError(f"sites: {len(distinct)} distinct sites, at most {limits.max_sites} per plan")
    return tuple(distinct)


def _costs(values: list[str], limits: PlanLimits) -> dict[str, float]:
    """``cost=SITE:PRICE`` (repeatable or comma-separated), each price finite and in range."""
    items = [item for v in values for item in v.split(",") if item.strip()]
    if len(items) > limits.max_list_items:
        raise PlanError(f"cost: more than {limits.max_list_items} prices")
    if any(len(item) > limits.max_name_chars + limits.max_value_chars for item in items):
        raise PlanError("cost: an item longer than SITE:PRICE can be")
    costs = parse_costs(item.partition(":")[::2] for item in items)
    for site, price in costs.items():
        if price > limits.max_price_per_kwh:
            raise PlanError(f"cost {site}: at most {limits.max_price_per_kwh:g} per kWh, got {price:g}")
    return costs


def _top(text: str, limits: PlanLimits) -> int:
    try:
        top = int(text)
    except ValueError:
        raise PlanError(f"top: not a whole number: {text!r}") from None
    if top < 1:
        raise PlanError(f"top: must be >= 1, got {top}")
    if top > limits.max_top:
        raise PlanError(f"top: at most {limits.max_top}, got {top}")
    return top


def _check_starts(request: PlanRequest, limits: PlanLimits) -> None:
    """The window between ``after`` and ``by`` must hold a bounded number of hourly starts."""
    try:
        _, count = request.starts()
    except OverflowError:
        raise PlanError("after: out of range") from None
    if count > limits.max_starts:
        raise PlanError(f"by: {count} hourly starts between after and by, at most {limits.max_starts}: "
                        f"narrow the window")
