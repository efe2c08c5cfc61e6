"""The report's PNG charts, drawn from the report tables with matplotlib.

Each chart reads without the text around it: a title, units on the axes, a
legend outside the plot area (below it, so it never covers a bar), and the
colours of :mod:`wattfleet.core.palette`, which the Grafana dashboards use too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wattfleet.aggregator.outputs.queries import Tables
from wattfleet.core.palette import CFE_COLOURMAP, category_colour, colour

DPI = 150  # sharp on paper at the report's width (about 16 cm), still small as an embedded data URI
WIDE, NARROW = (8.0, 3.8), (6.5, 3.8)  # inches


@dataclass(frozen=True)
class Chart:
    """A drawn chart: its file, its title, and the report section it illustrates (table name)."""

    name: str
    title: str
    section: str


def _plt() -> Any:
    # Imported here, as before the split: importing pyplot is slow and selects a backend for the
    # whole process, which only drawing the report should do (files only: Agg, never a display).
    import matplotlib  # lazy: optional dependency (report extra), and importing pyplot is slow
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after use("Agg"), so the backend is chosen before pyplot loads
    return plt


def _col(cols: list[str], rows: list[tuple[Any, ...]], name: str) -> list[float]:
    i = cols.index(name)
    return [float(r[i]) if r[i] is not None else 0.0 for r in rows]


def _legend_below(fig: Any, ax: Any, ncols: int) -> None:
    """The legend under the plot, outside the axes: it can never cover data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(ncols, len(handles)), frameon=False)


def write_charts(tables: Tables, out: Path) -> list[Chart]:
    """Draw the charts into ``out``; returns each chart, in report order."""
    plt = _plt()
    charts: list[Chart] = []

    def figure(size: tuple[float, float], title: str) -> tuple[Any, Any]:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        fig.suptitle(title, fontsize=12, fontweight="bold")
        ax.spines[["top", "right"]].set_visible(False)
        return fig, ax

    def save(fig: Any, name: str, title: str, section: str) -> None:
        fig.savefig(out / name, dpi=DPI)
        plt.close(fig)
        charts.append(Chart(name, title, section))

    cols, rows = tables["daily"]
    title = "Energy per day, fleet"
    fig, ax = figure(WIDE, title)
    days = [r[cols.index("day")] for r in rows]
    ax.bar(days, _col(cols, rows, "facility_kwh"), label="Facility energy (IT + cooling and losses)",
           color=colour("facility_energy"))
    ax.bar(days, _col(cols, rows, "it_kwh"), width=0.5, label="IT energy", color=colour("it_energy"))
    ax.set_ylabel("Energy (kWh)")
    ax.set_xlabel("Day (UTC)")
    fig.autofmt_xdate()
    _legend_below(fig, ax, 2)
    save(fig, "energy.png", title, "energy")

    cols, rows = tables["sites"]
    sites = [str(r[cols.index("site")]) for r in rows]
    title = "Emissions by site and scope (location-based)"
    fig, ax = figure(NARROW, title)
    bottom = [0.0] * len(rows)
    for key, column, lab in (("scope1", "scope1_kg", "Scope 1"),
                             ("scope2_location", "scope2_location_kg", "Scope 2, location-based"),
                             ("scope3_embodied", "embodied_amortized_kg", "Embodied, amortized (per-use)"),
                             ("scope3_upstream", "scope3_upstream_kg", "Scope 3, upstream energy")):
        vals = _col(cols, rows, column)
        ax.bar(sites, vals, bottom=bottom, label=lab, color=colour(key))
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_ylabel("Emissions (kgCO2e)")
    _legend_below(fig, ax, 2)
    save(fig, "scopes.png", title, "sites")

    title = "Scope 2 by site: location-based and market-based"
    fig, ax = figure(NARROW, title)
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], _col(cols, rows, "scope2_location_kg"), 0.4, label="Location-based",
           color=colour("scope2_location"))
    ax.bar([i + 0.2 for i in x], _col(cols, rows, "scope2_market_kg"), 0.4, label="Market-based",
           color=colour("scope2_market"))
    ax.set_xticks(list(x), sites)
    ax.set_ylabel("Scope 2 (kgCO2e)")
    _legend_below(fig, ax, 2)
    save(fig, "location_vs_market.png", title, "sites")

    title = "Water by site"
    fig, ax = figure(NARROW, title)
    onsite = _col(cols, rows, "water_onsite_l")
    ax.bar(sites, onsite, label="On-site (WUE x IT energy)", color=colour("water_onsite"))
    ax.bar(sites, _col(cols, rows, "water_offsite_l"), bottom=onsite, label="Off-site (grid generation)",
           color=colour("water_offsite"))
    ax.set_ylabel("Water (L)")
    _legend_below(fig, ax, 2)
    save(fig, "water.png", title, "sites")

    cols, rows = tables["cfe_by_hour_of_day"]
    title = "Carbon-free energy score by hour of day, per site"
    fig, ax = figure(WIDE, title)
    for i, site in enumerate(sorted({str(r[0]) for r in rows})):
        pts = [(r[1], r[2]) for r in rows if str(r[0]) == site and r[2] is not None]
        ax.plot([p[0] for p in pts], [p[1] * 100 for p in pts], marker="o", markersize=3, label=site,
                color=category_colour(i))
    ax.set_xlabel("Hour of day (UTC)")
    ax.set_ylabel("CFE score (%)")
    ax.set_xlim(-0.5, 23.5)
    ax.set_xticks(range(0, 24, 3))
    ax.set_ylim(0, 100)
    _legend_below(fig, ax, 5)
    save(fig, "cfe_by_hour.png", title, "cfe")

    cols, rows = tables.get("cfe_by_day_and_hour", ([], []))
    if rows:
        title = "Carbon-free energy score by day and hour (fleet)"
        fig, ax = figure(WIDE, title)
        days = sorted({r[0] for r in rows})
        grid = [[float("nan")] * 24 for _ in days]
        for r in rows:
            if r[2] is not None:
                grid[days.index(r[0])][int(r[1])] = r[2] * 100
        image = ax.imshow(grid, aspect="auto", cmap=CFE_COLOURMAP, vmin=0, vmax=100, interpolation="nearest",
                          extent=(-0.5, 23.5, len(days) + 0.5, 0.5))
        ax.set_xlabel("Hour of day (UTC)")
        ax.set_ylabel("Day of month")
        ax.set_xticks(range(0, 24, 3))
        ax.set_yticks(range(1, len(days) + 1, max(1, len(days) // 8)),
                      [f"{days[i - 1].day}" for i in range(1, len(days) + 1, max(1, len(days) // 8))])
        fig.colorbar(image, ax=ax, label="CFE score (%)")
        save(fig, "cfe_heatmap.png", title, "cfe")

    cols, rows = tables["top_emitters"]
    title = "Top emitting nodes (location-based Scope 2 + amortized embodied)"
    fig, ax = figure(WIDE, title)
    ax.barh([str(r[0]) for r in rows][::-1], _col(cols, rows, "caused_location_kg")[::-1],
            color=colour("top_emitter"))
    ax.set_xlabel("Emissions caused (kg CO2e)")
    save(fig, "top_emitters.png", title, "top_emitters")
    return charts
