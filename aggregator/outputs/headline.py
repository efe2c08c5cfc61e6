"""The report's headline: the month's totals at a glance, and how they moved against the previous month.

Emissions are shown location- and market-based side by side (GHG Protocol
Scope 2 Guidance: both, neither in place of the other): they are the GHG
inventory summary's totals, in its unit, so the headline and the table agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wattfleet import sql
from wattfleet.aggregator.outputs.labels import Label
from wattfleet.aggregator.outputs.markup import NONE_TEXT, decimals_for, format_value
from wattfleet.aggregator.outputs.queries import Tables

HEADLINE = "queries/report/headline.sql#months"


@dataclass(frozen=True)
class Figure:
    """One headline figure: its key (the SQL column), label, value and the previous month's value."""

    key: str
    label: Label
    value: float | None
    previous: float | None
    colour_key: str  # wattfleet.core.palette key of the quantity

    @property
    def change(self) -> float | None:
        """Relative change (percentage points for a ratio, see :attr:`change_in_points`); None if undefined."""
        if self.value is None or self.previous is None:
            return None
        if self.label.kind == "pct":
            return self.value - self.previous
        return (self.value - self.previous) / self.previous if self.previous else None

    @property
    def change_in_points(self) -> bool:
        return self.label.kind == "pct"


# (key, label, palette key): the headline's figures, in reading order. Emissions are the inventory
# summary's grand totals (the "Total" row of ghg_summary); the others are columns of HEADLINE.
FIGURES = (
    ("location_based_kg_co2e", Label("Emissions, location-based", "kg CO2e", "num"), "scope2_location"),
    ("market_based_kg_co2e", Label("Emissions, market-based", "kg CO2e", "num"), "scope2_market"),
    ("facility_kwh", Label("Facility energy", "kWh", "num"), "facility_energy"),
    ("it_kwh", Label("IT energy", "kWh", "num"), "it_energy"),
    ("water_l", Label("Water", "L", "num"), "water_onsite"),
    ("cfe_ratio", Label("CFE score", "%", "pct"), "cfe"),
)
EMISSIONS = ("location_based_kg_co2e", "market_based_kg_co2e")
TOTALS_NOTE = ("Emissions are the GHG inventory's totals (Scope 1 + Scope 2 + Scope 3, as in the summary table "
               "below): location-based with the grid's hourly average intensity, market-based with contractual "
               "instruments and the residual mix.")
GRAND_TOTAL = ("Scope 1 + Scope 2 + Scope 3", "Total")  # (scope, category) of ghg_summary's last row
INVENTORY = "queries/report/inventory.sql"


@dataclass(frozen=True)
class Headline:
    month: str
    previous_month: str
    figures: tuple[Figure, ...]
    previous_hours: int  # hours with data in the previous month (0: no comparison)

    @property
    def compared(self) -> bool:
        return self.previous_hours > 0


def previous_month(month: str) -> str:
    y, m = (int(x) for x in month.split("-"))
    return f"{y - (m == 1):04d}-{(m - 2) % 12 + 1:02d}"


def grand_totals(cols: list[str], rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The inventory summary's "Total" row as {column: value}; empty when the table has none."""
    for r in rows:
        row = dict(zip(cols, r, strict=True))
        if (row.get("scope"), row.get("category")) == GRAND_TOTAL:
            return row
    return {}


def headline_from_rows(month: str, cols: list[str], rows: list[tuple[Any, ...]],
                       emissions: dict[str, Any] | None = None, previous_emissions: dict[str, Any] | None = None
                       ) -> Headline:
    """The headline from :data:`HEADLINE`'s rows (one per month present) and each month's summary totals."""
    by_month = {r[0]: dict(zip(cols, r, strict=True)) for r in rows}
    this = {**by_month.get(month, {}), **(emissions or {})}
    prev = by_month.get(previous_month(month), {})
    if prev:
        prev = {**prev, **(previous_emissions or {})}
    figures = tuple(Figure(key, lab, this.get(key), prev.get(key), colour) for key, lab, colour in FIGURES)
    return Headline(month, previous_month(month), figures, int(prev.get("hours_with_data") or 0))


def headline_from_store(con: Any, month: str, start: datetime, end: datetime, tables: Tables) -> Headline:
    """This month's emissions from its ``ghg_summary`` table; the previous month's from the same inventory
    queries run for that month; energy, water and CFE for both from ``fact_device_hour``.

    Runs after :func:`queries.run_report_queries`: it replaces the temp tables that function left
    (``report_ghg_inventory``, ``report_ghg_summary``) with the previous month's.
    """
    prev_start = datetime(start.year - (start.month == 1), (start.month - 2) % 12 + 1, 1)
    rel = con.execute(sql.load(HEADLINE), {"previous_start": prev_start, "month_end": end})
    cols = [d[0] for d in rel.description]
    months = rel.fetchall()
    previous: dict[str, Any] = {}
    if any(r[0] == previous_month(month) for r in months):
        params = {"month_start": prev_start, "month_end": start}
        for name in ("ghg_inventory", "ghg_summary"):
            query = sql.load(f"{INVENTORY}#{name}")
            used = {k: v for k, v in params.items() if k in sql.parameters(query)}
            con.execute(f"CREATE OR REPLACE TEMP TABLE report_{name} AS ({query})", used)
        rel = con.execute("SELECT * FROM report_ghg_summary")
        previous = grand_totals([d[0] for d in rel.description], rel.fetchall())
    emissions = grand_totals(*tables["ghg_summary"]) if "ghg_summary" in tables else {}
    return headline_from_rows(month, cols, months, {k: emissions.get(k) for k in EMISSIONS},
                              {k: previous.get(k) for k in EMISSIONS})


def value_text(fig: Figure) -> str:
    """The figure as the headline shows it (three significant digits, as a table column would)."""
    if fig.value is None:
        return NONE_TEXT
    if fig.label.kind == "pct":
        return format_value(fig.value, "pct")
    return format_value(fig.value, "num", decimals_for([fig.value]))


def change_text(fig: Figure, head: Headline) -> str:
    """'+3.2 % vs 2026-09', '-1.5 points vs 2026-09', or why there is no comparison."""
    if not head.compared:
        return f"no data for {head.previous_month} to compare"
    change = fig.change
    if change is None:
        return f"no {fig.label.words.lower()} in {head.previous_month} to compare"
    if fig.change_in_points:
        return f"{change * 100:+,.1f} points vs {head.previous_month}"
    return f"{change * 100:+,.1f} % vs {head.previous_month}"
