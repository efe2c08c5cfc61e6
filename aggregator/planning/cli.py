"""``wattfleet plan``: rank start times and sites for a run by expected emissions, as text or JSON.

Thin argument handling and the text table only: the planning is
:mod:`wattfleet.aggregator.planning.plan`'s, which ``GET /api/plan``
(:mod:`.api`) calls too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timezone

from wattfleet.aggregator.argtypes import key_value
from wattfleet.aggregator.config.checker import FacilityConfigError
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.planning.errors import PlanError
from wattfleet.aggregator.planning.plan import plan_facility
from wattfleet.aggregator.planning.ranking import Plan
from wattfleet.aggregator.planning.request import (
    parse_costs,
    parse_deadline,
    parse_duration_hours,
    parse_earliest,
    parse_energy_kwh,
)

UTC = timezone.utc
DEFAULT_CONFIG = os.environ.get("WATTFLEET_CONFIG", "facility.yaml")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan", help="rank start times and sites for a run by expected emissions",
        description="Rank hourly start times and sites by expected emissions = IT energy x site PUE x the "
                    "hourly grid intensity over the run (marginal where the source gives it, average otherwise). "
                    "Without intensity for the requested dates (historical files), replays the latest year the "
                    "data has on the same weekday and hour, and says so.")
    p.add_argument("--duration", required=True, help="run length, e.g. 6h, 90m, 1.5d")
    p.add_argument("--energy", required=True, help="IT energy of the run, e.g. 1.2MWh, 800kWh (PUE is added per site)")
    p.add_argument("--sites", required=True, help="comma-separated site names from the facility config")
    p.add_argument("--by", required=True, help="deadline: a date (end of that UTC day) or an ISO timestamp")
    p.add_argument("--after", default=None, help="earliest start (default: now), date or ISO timestamp")
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"facility config (default: {DEFAULT_CONFIG})")
    p.add_argument("--mode", default="auto", choices=["auto", "forecast", "history"],
                   help="auto: use the source for the requested hours if it has them, else replay history")
    p.add_argument("--top", type=int, default=10, help="how many candidates to list (default 10)")
    p.add_argument("--cost", action="append", type=key_value, default=[], metavar="SITE=PRICE",
                   help="energy price per facility kWh for a site (overrides the config), repeatable")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    try:
        duration = parse_duration_hours(args.duration)
        energy = parse_energy_kwh(args.energy)
        deadline = parse_deadline(args.by)
        earliest = parse_earliest(args.after) if args.after else None
        costs = parse_costs(args.cost)
        if args.top < 1:
            raise PlanError(f"--top: must be >= 1, got {args.top}")
        cfg = load_facility(args.config)
        sites = [s.strip() for s in args.sites.split(",") if s.strip()]
        plan = plan_facility(cfg, sites, duration, energy, deadline, earliest=earliest, mode=args.mode,
                             top=args.top, costs=costs)
    except (PlanError, FacilityConfigError, GridDataError, OSError) as exc:
        print(f"wattfleet plan: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        print(format_plan(plan))
    return 0


def format_plan(plan: Plan) -> str:
    """The plan as a text table: request, intensity basis per site, ranking, savings."""
    r = plan.request
    z = lambda dt: dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M")  # noqa: E731
    first = plan.sites[0].candidates[0].start
    lines = [f"Plan: {r.duration_hours:g} h run, {r.it_energy_kwh:,.1f} kWh IT energy; start from {z(first)}, "
             f"finish by {z(r.deadline)} UTC ({len(plan.sites[0].candidates)} start hours per site)", "",
             "Intensity used:"]
    for sp in plan.sites:
        s = sp.series
        line = (f"  {sp.site.name} ({sp.site.zone}, PUE {sp.site.pue:g}): {s.signal.upper()} intensity from "
                f"{s.source or 'unknown source'}")
        if s.mode == "history":
            line += (f"; HISTORY mode: no data for these dates, replaying {z(s.replayed_from)} onwards "
                     f"(same weekday and hour)")
        else:
            line += "; forecast/observed for the requested hours"
        lines.append(line)
    has_cost = any(sp.site.cost_per_kwh is not None for sp in plan.sites)
    lines += ["", f"{'#':>3}  {'site':<10} {'start (UTC)':<17} {'end (UTC)':<17} {'g/kWh':>8} {'signal':<8} "
                  f"{'fac. kWh':>10} {'kgCO2e':>10}" + (f" {'cost':>10}" if has_cost else "")]
    for n, c in enumerate(plan.ranked, 1):
        cost = "" if not has_cost else (f" {c.cost:>10,.2f}" if c.cost is not None else f" {'-':>10}")
        lines.append(f"{n:>3}  {c.site:<10} {z(c.start):<17} {z(c.end):<17} {c.mean_grams_per_kwh:>8.1f} "
                     f"{c.signal:<8} {c.facility_kwh:>10,.1f} {c.kg_co2e:>10,.2f}{cost}")
    lines += ["", "Best per site:"]
    for sp in plan.sites:
        b, e = sp.best, sp.earliest
        lines.append(f"  {sp.site.name}: {z(b.start)} -> {b.kg_co2e:,.2f} kg (earliest start {e.kg_co2e:,.2f} kg)")
    base, best = plan.baseline, plan.best
    if base.kg_co2e > 0:
        lines.append(f"\nBest vs starting at the earliest hour at {base.site}: {base.kg_co2e - best.kg_co2e:,.2f} kg "
                     f"less ({1 - best.kg_co2e / base.kg_co2e:.1%}).")
    if plan.notes:
        lines += ["", "Notes:"] + [f"  - {n}" for n in plan.notes]
    return "\n".join(lines)
