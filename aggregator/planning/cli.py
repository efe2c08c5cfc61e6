"""``wattfleet plan`` (best window and place), ``wattfleet disclose`` (model-card / Art. 53 / CSRD)
and the ``GET /api/plan`` JSON endpoint that ``wattfleet serve`` mounts.

Thin argument handling only: the work is in :mod:`.planning` and
:mod:`.disclosure`, which ``wattfleet serve`` and the reports call directly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from wattfleet.core.http import JSON, Handler, Request, Response

UTC = timezone.utc
DEFAULT_CONFIG = os.environ.get("WATTFLEET_CONFIG", "facility.yaml")


def _kv(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), v.strip()


def register(sub: Any) -> None:
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
    p.add_argument("--cost", action="append", type=_kv, default=[], metavar="SITE=PRICE",
                   help="energy price per facility kWh for a site (overrides the config), repeatable")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=run_plan)

    d = sub.add_parser(
        "disclose", help="generate a footprint disclosure for a training run or a served model",
        description="Select facts by labels and time range from the DuckDB store and write a model-card "
                    "section (Markdown) and/or JSON for EU AI Act Art. 53 documentation and CSRD evidence. "
                    "Every figure lists the SQL file, parameters and row counts it came from.")
    d.add_argument("--db", required=True, help="DuckDB database written by the aggregator")
    d.add_argument("--kind", required=True, choices=["training_run", "served_model"])
    d.add_argument("--name", required=True, help="the run's or model's name as it should appear")
    d.add_argument("--label", action="append", type=_kv, default=[], metavar="LABEL=GLOB",
                   help="selector, repeatable; training_run: namespace, team, cluster, node, gpu_model, site; "
                        "served_model: model, engine, cluster, node, site")
    d.add_argument("--from", dest="start", required=True, help="period start (date or ISO timestamp, UTC)")
    d.add_argument("--to", dest="end", required=True, help="period end, exclusive (date = start of that day)")
    d.add_argument("--format", default="markdown", choices=["markdown", "json", "both"])
    d.add_argument("--flops", type=float, default=None, help="training FLOPs to state (e.g. from 6 x N x D)")
    d.add_argument("--out", default=None, help="write here instead of stdout (both: OUT.md and OUT.json)")
    d.set_defaults(func=run_disclose)


def _costs(pairs: Any) -> dict[str, float]:
    """(site, price) pairs -> {site: price per facility kWh}; a price must be a number >= 0."""
    from wattfleet.aggregator.planning.windows import PlanError

    out: dict[str, float] = {}
    for site, price in pairs:
        try:
            value = float(price)
        except ValueError:
            value = -1.0
        if not site.strip() or not value >= 0:  # also rejects NaN
            raise PlanError(f"cost {site}={price}: expected SITE and a price >= 0")
        out[site.strip()] = value
    return out


def _instant(text: str, what: str) -> datetime:
    from wattfleet.aggregator.config.facility import parse_instant
    try:
        return parse_instant(text)
    except ValueError:
        raise ValueError(f"{what}: not a date or ISO timestamp: {text!r}") from None


def run_plan(args: argparse.Namespace) -> int:
    from wattfleet.aggregator.config.facility import FacilityConfigError, load_facility
    from wattfleet.aggregator.grid.errors import GridDataError
    from wattfleet.aggregator.planning.windows import (PlanError, parse_deadline, parse_duration_hours, parse_earliest, parse_energy_kwh,
                           plan_facility)

    try:
        duration = parse_duration_hours(args.duration)
        energy = parse_energy_kwh(args.energy)
        deadline = parse_deadline(args.by)
        earliest = parse_earliest(args.after) if args.after else None
        costs = _costs(args.cost)
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


def format_plan(plan: Any) -> str:
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


def run_disclose(args: argparse.Namespace) -> int:
    import duckdb

    from wattfleet.aggregator.outputs.disclosure import DisclosureError, disclosure_from_store
    from wattfleet.aggregator.store.database import open_store

    try:
        start, end = _instant(args.start, "--from"), _instant(args.end, "--to")
    except ValueError as exc:
        print(f"wattfleet disclose: {exc}", file=sys.stderr)
        return 2
    if not Path(args.db).exists():
        print(f"wattfleet disclose: no database at {args.db}", file=sys.stderr)
        return 2
    labels = dict(args.label)
    try:
        con = open_store(args.db, read_only=True)
        try:
            d = disclosure_from_store(con, args.kind, args.name, labels, start, end, database=str(args.db),
                                      estimates={"flops": args.flops} if args.flops else None)
        finally:
            con.close()
    except (DisclosureError, duckdb.Error) as exc:
        print(f"wattfleet disclose: {args.db}: {exc}", file=sys.stderr)
        return 2
    md, js = d.to_markdown(), d.to_json_text() + "\n"
    if args.out:
        base = Path(args.out)
        if args.format == "both":
            base.with_suffix(".md").write_text(md)
            base.with_suffix(".json").write_text(js)
        else:
            base.write_text(md if args.format == "markdown" else js)
    else:
        if args.format in ("markdown", "both"):
            print(md)
        if args.format in ("json", "both"):
            print(js)
    return 0



# --- GET /api/plan on `wattfleet serve` ---------------------------------------------------------------------
PLAN_PATH = "/api/plan"
PLAN_PARAMS = ("duration", "energy", "sites", "by", "after", "mode", "top", "cost")


def plan_http(cfg: Any, query: str, loader: Any = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for ``/api/plan?duration=6h&energy=1.2MWh&sites=a,b&by=2026-11-30``.

    Optional: ``after`` (earliest start), ``mode`` (auto|forecast|history),
    ``top`` (candidates listed), ``cost=SITE:PRICE`` (repeatable or
    comma-separated; price per facility kWh, over the config's). The body is
    the same JSON as ``wattfleet plan --json``; a bad request is 400 and a
    grid source that cannot be read is 502, both as ``{"error": message}``.
    """
    from urllib.parse import parse_qs

    from wattfleet.aggregator.grid.errors import GridDataError
    from wattfleet.aggregator.planning.windows import PlanError, plan_json

    try:
        q = parse_qs(query, keep_blank_values=True, strict_parsing=False)
        unknown = sorted(set(q) - set(PLAN_PARAMS))
        if unknown:
            raise PlanError(f"unknown query parameter(s) {unknown} (known: {', '.join(PLAN_PARAMS)})")
        for name in ("duration", "energy", "sites", "by"):
            if not q.get(name) or not q[name][0].strip():
                raise PlanError(f"missing query parameter {name!r}")
        one = {k: v[-1] for k, v in q.items()}
        try:
            top = int(one.get("top", "10"))
        except ValueError:
            raise PlanError(f"top: not a whole number: {one['top']!r}") from None
        if top < 1:
            raise PlanError(f"top: must be >= 1, got {top}")
        costs = _costs(item.partition(":")[::2] for v in q.get("cost", []) for item in v.split(",") if item.strip())
        sites = [s.strip() for s in one["sites"].split(",") if s.strip()]
        body = plan_json(cfg, sites, one["duration"], one["energy"], one["by"], earliest=one.get("after"),
                         mode=one.get("mode", "auto"), top=top, costs=costs, loader=loader)
    except PlanError as exc:
        return 400, {"error": str(exc)}
    except (GridDataError, OSError) as exc:
        return 502, {"error": f"grid intensity: {exc}"}
    return 200, body


def plan_route(cfg: Any) -> Handler:
    """The ``GET /api/plan`` handler that ``wattfleet serve`` mounts beside ``/metrics``."""

    def handle(request: Request) -> Response:
        code, body = plan_http(cfg, request.query)
        return Response(code, (json.dumps(body, indent=2) + "\n").encode(), JSON)

    return handle
