"""``GET /api/plan`` on ``wattfleet serve``: the planner over HTTP, same JSON as ``wattfleet plan --json``.

The query string is checked here (unknown or missing parameters are a 400
naming them); the planning itself is :func:`plan_json`'s.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from wattfleet.aggregator.config.model import FacilityConfig
from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.planning.errors import PlanError
from wattfleet.aggregator.planning.plan import plan_json
from wattfleet.aggregator.planning.request import parse_costs
from wattfleet.aggregator.planning.series import Loader
from wattfleet.core.http import JSON, Handler, Request, Response

PLAN_PATH = "/api/plan"
PLAN_PARAMS = ("duration", "energy", "sites", "by", "after", "mode", "top", "cost")
REQUIRED_PARAMS = ("duration", "energy", "sites", "by")


def plan_http(cfg: FacilityConfig, query: str, loader: Loader | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for ``/api/plan?duration=6h&energy=1.2MWh&sites=a,b&by=2026-11-30``.

    Optional: ``after`` (earliest start), ``mode`` (auto|forecast|history),
    ``top`` (candidates listed), ``cost=SITE:PRICE`` (repeatable or
    comma-separated; price per facility kWh, over the config's). The body is
    the same JSON as ``wattfleet plan --json``; a bad request is 400 and a
    grid source that cannot be read is 502, both as ``{"error": message}``.
    """
    try:
        q = parse_qs(query, keep_blank_values=True, strict_parsing=False)
        _check_params(q)
        one = {k: v[-1] for k, v in q.items()}
        top = _top(one.get("top", "10"))
        costs = parse_costs(item.partition(":")[::2] for v in q.get("cost", []) for item in v.split(",")
                            if item.strip())
        sites = [s.strip() for s in one["sites"].split(",") if s.strip()]
        body = plan_json(cfg, sites, one["duration"], one["energy"], one["by"], earliest=one.get("after"),
                         mode=one.get("mode", "auto"), top=top, costs=costs, loader=loader)
    except PlanError as exc:
        return 400, {"error": str(exc)}
    except (GridDataError, OSError) as exc:
        return 502, {"error": f"grid intensity: {exc}"}
    return 200, body


def _check_params(q: dict[str, list[str]]) -> None:
    unknown = sorted(set(q) - set(PLAN_PARAMS))
    if unknown:
        raise PlanError(f"unknown query parameter(s) {unknown} (known: {', '.join(PLAN_PARAMS)})")
    for name in REQUIRED_PARAMS:
        if not q.get(name) or not q[name][0].strip():
            raise PlanError(f"missing query parameter {name!r}")


def _top(text: str) -> int:
    try:
        top = int(text)
    except ValueError:
        raise PlanError(f"top: not a whole number: {text!r}") from None
    if top < 1:
        raise PlanError(f"top: must be >= 1, got {top}")
    return top


def plan_route(cfg: FacilityConfig) -> Handler:
    """The ``GET /api/plan`` handler that ``wattfleet serve`` mounts beside ``/metrics``."""

    def handle(request: Request) -> Response:
        code, body = plan_http(cfg, request.query)
        return Response(code, (json.dumps(body, indent=2) + "\n").encode(), JSON)

    return handle
