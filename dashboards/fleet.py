"""Fleet overview: power, energy, live carbon and water across sites, and who uses most."""

from __future__ import annotations

from grafanalib import core as g

from wattfleet.core import catalog
from wattfleet.dashboards import promql as q
from wattfleet.dashboards import rules as r
from wattfleet.dashboards.base import dashboard
from wattfleet.dashboards.panels import (
    GRAMS,
    GRAMS_PER_HOUR,
    GRAMS_PER_KWH,
    KWH,
    LITRES,
    LITRES_PER_HOUR,
    NONE,
    WATT,
    Layout,
    Query,
)

UID = "wattfleet-fleet"


def _sum_rule(rule: str, labels: tuple[str, ...] = (), scale: str = "") -> str:
    return q.agg("sum", q.selector(rule, regex=q.node_filters()), labels) + scale


def _it_energy_kwh(labels: tuple[str, ...] = ()) -> str:
    return f"{q.agg('sum', q.it_energy('increase', q.RANGE, q.node_filters()), labels)} / {q.JOULES_PER_KWH:g}"


def _carbon_grams(rule: str, labels: tuple[str, ...] = ()) -> str:
    """Grams over the panel's range, integrating the recorded g/s (hourly intensity included)."""
    return q.agg("sum", q.integrate(q.selector(rule, regex=q.node_filters(gpu=rule == r.GPU_CARBON_RATE))), labels)


def _intensity_by_site() -> str:
    sites = q.agg("max", q.selector(catalog.SITE_INFO, regex=q.site_filter()), ("site", "zone"))
    return f"{q.intensity_by_zone()} * on(zone) group_right() {sites}"


def build() -> g.Dashboard:
    lay = Layout()
    lay.row("Now")
    lay.stat("IT power", WATT, [Query(_sum_rule(r.NODE_IT_POWER))],
             description="GPU + CPU package + DRAM power of the selected nodes (psys, core, uncore excluded: "
                         "they overlap package).")
    lay.stat("Facility power", WATT, [Query(_sum_rule(r.NODE_FACILITY_POWER))],
             description="IT power x site PUE, applied once.")
    lay.stat("IT energy today", KWH, [Query(_it_energy_kwh())], time_from="now/d")
    lay.stat("IT energy this month", KWH, [Query(_it_energy_kwh())], time_from="now/M")
    lay.stat("Carbon rate (location-based)", GRAMS_PER_HOUR, [Query(_sum_rule(r.NODE_CARBON_RATE, scale=" * 3600"))],
             description="Facility power x the zone's hourly average grid intensity.")
    lay.stat("Carbon today (location-based)", GRAMS, [Query(_carbon_grams(r.NODE_CARBON_RATE))], time_from="now/d")

    lay.row("Power and carbon by site")
    lay.timeseries("Power by site", WATT, [
        Query(_sum_rule(r.NODE_IT_POWER, ("site",)), "{{site}} IT"),
        Query(_sum_rule(r.NODE_FACILITY_POWER, ("site",)), "{{site}} facility")])
    lay.timeseries("Carbon rate by site (location-based)", GRAMS_PER_HOUR, [
        Query(_sum_rule(r.NODE_CARBON_RATE, ("site", "zone"), " * 3600"), "{{site}} ({{zone}})")], stacked=True)
    lay.timeseries("PUE by site", NONE, [
        Query(q.agg("max", q.selector(catalog.SITE_PUE, regex=q.site_filter()), ("site",)), "{{site}}")], w=8)
    lay.timeseries("Grid intensity by site", GRAMS_PER_KWH, [Query(_intensity_by_site(), "{{site}} ({{zone}})")],
                   w=8, description="Hourly average intensity of each site's grid zone.")
    lay.timeseries("On-site water rate", LITRES_PER_HOUR, [
        Query(_sum_rule(r.NODE_WATER_RATE, ("site",), " * 3600"), "{{site}}")], w=8,
        description="WUE x IT power.")

    lay.row("Top consumers over the selected range")
    lay.table("Top nodes by energy", KWH, [Query(f"topk(10, {_it_energy_kwh(('site', 'node'))})")])
    lay.table("Top GPUs by energy", KWH, [Query(
        "topk(10, " + q.agg("sum", q.increase(q.selector(catalog.GPU_ENERGY, regex=q.node_filters(gpu=True))),
                            ("node", "gpu", "gpu_model")) + f") / {q.JOULES_PER_KWH:g}")])
    lay.table("Top nodes by carbon (location-based)", GRAMS,
              [Query(f"topk(10, {_carbon_grams(r.NODE_CARBON_RATE, ('site', 'node'))})")])
    lay.table("Top GPUs by carbon (location-based)", GRAMS,
              [Query(f"topk(10, {_carbon_grams(r.GPU_CARBON_RATE, ('node', 'gpu', 'gpu_model'))})")])
    lay.table("Water this month by site", LITRES, [Query(
        q.agg("sum", q.selector(catalog.ROLLUP_WATER, regex=q.site_filter()), ("site", "kind")))],
        w=24, h=6)
    return dashboard("wattfleet / Fleet overview", UID, lay,
                     "Power, energy, location-based carbon, PUE, grid intensity and water across the fleet.")
