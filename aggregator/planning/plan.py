"""A plan from the facility config: its sites' PUE, prices and grid specs, ranked for one run.

:func:`plan_json` is the whole planner as one JSON-able dict, the body of
``wattfleet plan --json`` and of ``GET /api/plan``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from wattfleet.aggregator.config.model import FacilityConfig
from wattfleet.aggregator.grid.timeutil import require_aware
from wattfleet.aggregator.planning.errors import PlanError
from wattfleet.aggregator.planning.ranking import Plan, SiteOption, rank
from wattfleet.aggregator.planning.request import (
    PlanRequest,
    parse_deadline,
    parse_duration_hours,
    parse_earliest,
    parse_energy_kwh,
)
from wattfleet.aggregator.planning.series import Loader, load_site_series

UTC = timezone.utc


def site_options(cfg: FacilityConfig, names: Sequence[str], costs: Mapping[str, float] | None = None
                 ) -> list[SiteOption]:
    """SiteOptions from a FacilityConfig; price from ``costs`` or the site's ``cost_per_kwh`` if configured."""
    out = []
    for name in names:
        site = cfg.sites.get(name)
        if site is None:
            raise PlanError(f"--sites: unknown site {name!r} in {cfg.path} (sites: {', '.join(cfg.sites)})")
        if site.pue is None:  # only a config that failed its checks lacks the default PUE
            raise PlanError(f"--sites: site {name!r} in {cfg.path} has no default PUE")
        cost = (costs or {}).get(name, getattr(site, "cost_per_kwh", None))
        out.append(SiteOption(name, site.zone, float(site.pue), None if cost is None else float(cost)))
    return out


def plan_facility(
    cfg: FacilityConfig, site_names: Sequence[str], duration_hours: float, it_energy_kwh: float,
    deadline: datetime, *,
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


def plan_json(cfg: FacilityConfig, sites: Sequence[str], duration: str | float, energy: str | float,
              by: str | datetime, *,
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
