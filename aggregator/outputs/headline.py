"""The report's headline: the month's totals at a glance, and how they moved against the previous month.

Emissions are shown location- and market-based side by side (GHG Protocol
Scope 2 Guidance: both, neither in place of the other), in the GHG summary
table's unit and from the same sums, so the headline and the table agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wattfleet import sql
from wattfleet.aggregator.outputs.labels import Label
from wattfleet.aggregator.outputs.markup import NONE_TEXT, decimals_for, format_value

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


# (SQL column, label, palette key): the headline's figures, in reading order.
FIGURES = (
    ("total_location_tco2e", Label("Emissions, location-based", "tCO2e", "num"), "scope2_location"),
    ("total_market_tco2e", Label("Emissions, market-based", "tCO2e", "num"), "scope2_market"),
    ("facility_kwh", Label("Facility energy", "kWh", "num"), "facility_energy"),
    ("it_kwh", Label("IT energy", "kWh", "num"), "it_energy"),
    ("water_l", Label("Water", "L", "num"), "water_onsite"),
    ("cfe_ratio", Label("CFE score", "%", "pct"), "cfe"),
)
TOTALS_NOTE = ("Emissions are Scope 1 + Scope 2 + Scope 3 (embodied hardware and upstream energy); "
               "the location-based total uses the grid's hourly average intensity, the market-based total "
               "contractual instruments and the residual mix.")


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


def headline_from_rows(month: str, cols: list[str], rows: list[tuple[Any, ...]]) -> Headline:
    """The headline from :data:`HEADLINE`'s rows (one per month present)."""
    by_month = {r[0]: dict(zip(cols, r, strict=True)) for r in rows}
    this, prev = by_month.get(month, {}), by_month.get(previous_month(month), {})
    figures = tuple(Figure(key, lab, this.get(key), prev.get(key), colour) for key, lab, colour in FIGURES)
    return Headline(month, previous_month(month), figures, int(prev.get("hours_with_data") or 0))


def headline_from_store(con: Any, month: str, start: datetime, end: datetime) -> Headline:
    """Read the month and the one before it from ``fact_device_hour``."""
    prev_start = datetime(start.year - (start.month == 1), (start.month - 2) % 12 + 1, 1)
    rel = con.execute(sql.load(HEADLINE), {"previous_start": prev_start, "month_end": end})
    cols = [d[0] for d in rel.description]
    return headline_from_rows(month, cols, rel.fetchall())


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
