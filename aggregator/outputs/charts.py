"""The report's PNG charts, drawn from the report tables with matplotlib."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wattfleet.aggregator.outputs.queries import Tables


def write_charts(tables: Tables, out: Path) -> list[tuple[str, str]]:
    """Draw the charts into ``out``; returns (file name, title) of each, in report order."""
    # Imported here, as before the split: importing pyplot is slow and selects a backend for the
    # whole process, which only drawing the report should do (files only: Agg, never a display).
    import matplotlib  # lazy: optional dependency (report extra), and importing pyplot is slow
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after use("Agg"), so the backend is chosen before pyplot loads

    charts: list[tuple[str, str]] = []

    def save(fig: Any, name: str, title: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        charts.append((name, title))

    cols, rows = tables["daily"]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    days = [r[0] for r in rows]
    ax.bar(days, [r[2] for r in rows], label="facility kWh", color="#9ecae1")
    ax.bar(days, [r[1] for r in rows], label="IT kWh", color="#3182bd")
    ax.set_ylabel("kWh")
    ax.legend()
    fig.autofmt_xdate()
    save(fig, "energy.png", "Energy per day (IT inside facility)")

    cols, rows = tables["sites"]
    c = {n: i for i, n in enumerate(cols)}
    sites = [r[c["site"]] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bottom = [0.0] * len(rows)
    for key, label in (("scope1_kg", "Scope 1"), ("scope2_location_kg", "Scope 2 (location)"),
                       ("scope3_embodied_kg", "Scope 3 embodied"), ("scope3_upstream_kg", "Scope 3 upstream")):
        vals = [r[c[key]] or 0.0 for r in rows]
        ax.bar(sites, vals, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_ylabel("kgCO2e")
    ax.legend()
    save(fig, "scopes.png", "Scope 1/2/3 by site (location-based Scope 2)")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r[c["scope2_location_kg"]] or 0 for r in rows], 0.4, label="location-based")
    ax.bar([i + 0.2 for i in x], [r[c["scope2_market_kg"]] or 0 for r in rows], 0.4, label="market-based")
    ax.set_xticks(list(x), sites)
    ax.set_ylabel("kgCO2e")
    ax.legend()
    save(fig, "location_vs_market.png", "Scope 2: location-based vs market-based")

    cols, rows = tables["cfe_by_hour_of_day"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for site in sorted({r[0] for r in rows}):
        pts = [(r[1], r[2]) for r in rows if r[0] == site and r[2] is not None]
        ax.plot([p[0] for p in pts], [p[1] * 100 for p in pts], marker="o", label=site)
    ax.set_xlabel("hour of day (UTC)")
    ax.set_ylabel("CFE %")
    ax.set_ylim(0, 100)
    ax.legend()
    save(fig, "cfe_by_hour.png", "Hourly carbon-free energy score by hour of day")

    cols, rows = tables["top_emitters"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh([r[0] for r in rows][::-1], [r[2] or 0 for r in rows][::-1], color="#de2d26")
    ax.set_xlabel("kgCO2e caused (location-based Scope 2 + amortized embodied)")
    save(fig, "top_emitters.png", "Top emitting nodes")

    cols, rows = tables["sites"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(sites, [r[c["water_onsite_l"]] or 0 for r in rows], label="on-site (WUE x IT)")
    ax.bar(sites, [r[c["water_offsite_l"]] or 0 for r in rows], bottom=[r[c["water_onsite_l"]] or 0 for r in rows],
           label="off-site (grid)")
    ax.set_ylabel("litres")
    ax.legend()
    save(fig, "water.png", "Water")
    return charts
