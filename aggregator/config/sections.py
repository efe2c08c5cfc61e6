"""The smaller sections of a facility config: ``scope1`` (diesel, refrigerants), ``embodied``, ``budgets``, ``teams``.

Each entry naming a site is checked against the sites the file declares,
so a typo is an error rather than a source that silently matches nothing.
"""

from __future__ import annotations

from typing import Any

from wattfleet.aggregator.config.checker import Checker, Path_
from wattfleet.aggregator.config.model import Acquisition, Budget, Embodied, Scope1Source, Site, TeamRule

# kind -> (allowed keys, required keys)
SCOPE1_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "diesel": ({"site", "month", "liters", "kg_co2e_per_liter", "label"}, {"site", "month", "liters"}),
    "refrigerant": ({"site", "month", "gas", "kg", "gwp", "label"}, {"site", "month", "kg", "gwp"}),
}
EMBODIED_KEYS = {"gpu_model", "node", "kg_co2e", "life_years", "acquisitions"}
ACQUISITION_KEYS = {"date", "units", "site"}
BUDGET_KEYS = {"team", "model", "site", "month", "kg_co2e"}
BUDGET_OWNERS = ("team", "model", "site")
TEAM_MATCH_KEYS = ("namespace", "workload", "cluster", "node")
TEAM_KEYS = {"team", *TEAM_MATCH_KEYS}


def parse_scope1(c: Checker, raw: Any, sites: dict[str, Site], diesel_default: float) -> list[Scope1Source]:
    out: list[Scope1Source] = []
    d = c.mapping(raw, ("scope1",), set(SCOPE1_KEYS))
    if d is None:
        return out
    for kind in SCOPE1_KEYS:
        items = d.get(kind) or []
        if not isinstance(items, list):
            c.error(("scope1", kind), "must be a list")
            continue
        for i, item in enumerate(items):
            source = _scope1_source(c, kind, item, ("scope1", kind, i), sites, diesel_default)
            if source is not None:
                out.append(source)
    return out


def _scope1_source(c: Checker, kind: str, item: Any, p: Path_, sites: dict[str, Site], diesel_default: float
                   ) -> Scope1Source | None:
    allowed, required = SCOPE1_KEYS[kind]
    r = c.mapping(item, p, allowed, required)
    if r is None:
        return None
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
        return Scope1Source(site, kind, month, qty, factor, label)
    return None


def parse_embodied(c: Checker, raw: Any) -> list[Embodied]:
    out: list[Embodied] = []
    for p, d in c.entries(raw, "embodied", EMBODIED_KEYS, {"kg_co2e", "life_years"}):
        gm, node = c.text(d, "gpu_model", p), c.text(d, "node", p)
        if (gm is None) == (node is None):
            c.error(p, "give exactly one of 'gpu_model' (glob on the GPU model label) or 'node' (glob on node)")
        kg = c.number(d, "kg_co2e", p)
        life = c.number(d, "life_years", p, strict_min=True)
        acquisitions = _acquisitions(c, d.get("acquisitions", []), p + ("acquisitions",))
        if kg is not None and life is not None and (gm is None) != (node is None):
            out.append(Embodied(gm, node, kg, life, acquisitions))
    return out


def _acquisitions(c: Checker, raw: Any, p: Path_) -> tuple[Acquisition, ...]:
    """When and how many units were acquired (and for which site): Scope 3 Category 2 reports each
    unit's full cradle-to-gate emissions in the reporting year of its acquisition date."""
    if not isinstance(raw, list):
        c.error(p, "must be a list of {date: YYYY-MM-DD, units: N, site: S}")
        return ()
    out = []
    for j, item in enumerate(raw):
        q = p + (j,)
        r = c.mapping(item, q, ACQUISITION_KEYS, {"date", "units"})
        if r is None:
            continue
        day = c.day(r, "date", q)
        units = r.get("units")
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            c.error(q + ("units",), f"must be a whole number of units >= 1, got {units!r}")
            units = None
        site = c.text(r, "site", q)
        if site is not None and site not in c.declared_sites:
            c.error(q + ("site",), f"unknown site {site!r}")
        if day is not None and units is not None:
            out.append(Acquisition(day, units, site))
    return tuple(out)


def parse_budgets(c: Checker, raw: Any) -> list[Budget]:
    out: list[Budget] = []
    for p, d in c.entries(raw, "budgets", BUDGET_KEYS, {"month", "kg_co2e"}):
        owners = [k for k in BUDGET_OWNERS if k in d]
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


def parse_teams(c: Checker, raw: Any) -> list[TeamRule]:
    """``teams:``: ``{team, namespace|workload|cluster|node: glob, ...}``, at least one glob per rule.

    A team name cannot start with ``(``: the rollups keep the non-workload shares under ``(idle)``,
    ``(system)``, ``(unallocated)``, ``(unattributed)`` and unmatched workloads under ``(unmapped)``.
    """
    out: list[TeamRule] = []
    for p, d in c.entries(raw, "teams", TEAM_KEYS, {"team"}):
        team = c.text(d, "team", p)
        globs = {k: c.text(d, k, p) for k in TEAM_MATCH_KEYS}
        if team is not None and (not team.strip() or team.startswith("(")):
            c.error(p + ("team",), f"team name {team!r} must be non-empty and not start with '('")
            team = None
        for k, v in globs.items():
            if v is not None and not v.strip():
                c.error(p + (k,), "an empty glob matches nothing; leave the key out to match any value")
        if not any(v for v in globs.values()):
            c.error(p, f"give at least one of {', '.join(TEAM_MATCH_KEYS)} (a glob) to say which workloads")
            continue
        if team is not None:
            out.append(TeamRule(team, **globs))
    return out
