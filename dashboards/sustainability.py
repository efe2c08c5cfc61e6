"""Sustainability: Scope 1, 2 (location and market), 3, hourly CFE and budgets from the aggregator's rollups.

Everything here reads what ``wattfleet serve`` publishes: the aggregator has
already applied PUE, hourly intensity, instruments and amortization once, so
the dashboard only sums and never recomputes.
"""

from __future__ import annotations

from grafanalib import core as g

from wattfleet.core import catalog
from wattfleet.core.palette import SCOPE_COLOURS
from wattfleet.dashboards import promql as q
from wattfleet.dashboards import rules as r
from wattfleet.dashboards.base import dashboard
from wattfleet.dashboards.panels import (
    KILOGRAMS,
    KWH,
    LITRES,
    NONE,
    PERCENT_UNIT,
    SECONDS,
    SHORT,
    Layout,
    Query,
)

UID = "wattfleet-sustainability"
# Scope label values the aggregator publishes on ROLLUP_EMISSIONS, with display titles.
SCOPES = (("scope1", "Scope 1"), ("scope2_location", "Scope 2 (location-based)"),
          ("scope2_market", "Scope 2 (market-based)"), ("scope3", "Scope 3"))


def _emissions(labels: tuple[str, ...], **eq: str) -> str:
    return q.agg("sum", q.selector(catalog.ROLLUP_EMISSIONS, eq=eq or None, regex=q.site_filter()), labels)


def _by_month(metric: catalog.Metric, labels: tuple[str, ...], scale: str = "") -> str:
    """Each month's final (largest) month-to-date value in the range, one row per period."""
    latest = q.agg("max", f"max_over_time({q.selector(metric, regex=q.site_filter())}[{q.RANGE}])",
                   ("site", "period") + labels)
    return q.agg("sum", latest, ("period",) + labels) + scale


# Labels of the zero line drawn while no ingest run has kept a stored hour (no kept series exists yet).
NONE_KEPT = {"source": "all sources", "mode": "none kept"}


def kept_stored_hours() -> str:
    """Stored hours ingest runs kept instead of replacing, by source and mode; a zero line while none was kept.

    serve publishes the count from the store (since the store was created) only once a run has kept one,
    so the line is cumulative rather than an ``increase``, which would miss the first keep. Replicas of
    serve read the same store: ``max``, never ``sum``. The zero line rides on the watermark, which every
    serve with an ingested hour publishes.
    """
    kept = q.agg("max", q.selector(catalog.AGGREGATOR_KEPT_WINDOWS), ("source", "mode"))
    zero = f"max({q.selector(catalog.AGGREGATOR_WATERMARK)}) * 0"
    for label, value in NONE_KEPT.items():
        zero = f'label_replace({zero}, "{label}", "{value}", "", "")'
    return f"{kept} or on() {zero}"


def build() -> g.Dashboard:
    lay = Layout()
    lay.row("This month")
    for scope, title in SCOPES:
        lay.stat(title, KILOGRAMS, [Query(_emissions(("period",), scope=scope) + " / 1000", "{{period}}")],
                 w=6, description="Month to date, as published by the aggregator.", colour=SCOPE_COLOURS[scope])
    lay.timeseries("Emissions by scope, month to date", KILOGRAMS, [
        Query(_emissions(("scope", "period")) + " / 1000", "{{scope}} {{period}}")],
        colours={f"^{scope} .*": SCOPE_COLOURS[scope] for scope, _ in SCOPES})
    lay.timeseries("Hourly carbon-free energy score", PERCENT_UNIT, [
        Query(q.agg("max", q.selector(catalog.ROLLUP_CFE, regex=q.site_filter()), ("site", "period")),
              "{{site}} {{period}}")],
        description="Per hour min(consumption, carbon-free supply) / consumption, over the month.")
    lay.timeseries("Energy by kind, month to date", KWH, [Query(
        q.agg("sum", q.selector(catalog.ROLLUP_ENERGY, regex=q.site_filter()), ("site", "kind"))
        + f" / {q.JOULES_PER_KWH:g}", "{{site}} {{kind}}")], w=8)
    lay.timeseries("Water by kind, month to date", LITRES, [Query(
        q.agg("sum", q.selector(catalog.ROLLUP_WATER, regex=q.site_filter()), ("site", "kind")),
        "{{site}} {{kind}}")], w=8)
    lay.timeseries("PUE by site", NONE, [Query(
        q.agg("max", q.selector(catalog.SITE_PUE, regex=q.site_filter()), ("site",)), "{{site}}")], w=8)

    lay.row("By month")
    lay.table("Emissions by month and scope", KILOGRAMS, [Query(_by_month(catalog.ROLLUP_EMISSIONS, ("scope",),
                                                                           " / 1000"))])
    lay.table("Hourly CFE score by month and site", PERCENT_UNIT, [Query(
        q.agg("max", f"max_over_time({q.selector(catalog.ROLLUP_CFE, regex=q.site_filter())}[{q.RANGE}])",
              ("site", "period")))])

    lay.row("Carbon budgets and data freshness")
    used = q.selector(catalog.CARBON_BUDGET_USED)
    lay.timeseries("Budget used", PERCENT_UNIT, [Query(
        f"{used} / on(scope_owner, period) {q.selector(catalog.CARBON_BUDGET)}", "{{scope_owner}} {{period}}")])
    lay.timeseries("Budget burn rate", NONE, [Query(r.BUDGET_BURN_RATE, "{{scope_owner}} {{period}}")],
                   description="Emission rate over the rate the monthly budget allows; above 1 overruns it.")
    lay.timeseries("Data age", SECONDS, [
        Query(q.agg("max", q.selector(catalog.GRID_INTENSITY_AGE), ("zone",)), "grid intensity {{zone}}"),
        Query(f"time() - max({q.selector(catalog.AGGREGATOR_WATERMARK)})", "aggregator watermark")])
    lay.timeseries("Stored hours kept by ingest", SHORT, [Query(kept_stored_hours(), "{{source}} ({{mode}})")],
                   description="Hours an ingest run kept as stored instead of replacing them, because the store "
                               "answered less than was stored (raw re-read) or the hour's recorded series were "
                               "incomplete (pre-aggregated); counted since the store was created. A step up is a "
                               "run that kept hours (alert WattfleetAggregatorKeptStoredHours, table "
                               "ingest_kept_hour); a zero line means none was kept.")
    return dashboard("wattfleet / Sustainability", UID, lay,
                     "GHG Scope 1, Scope 2 location- and market-based, Scope 3, hourly CFE and carbon budgets, "
                     "from the aggregator's published rollups.", time_from="now-30d", refresh="5m")
