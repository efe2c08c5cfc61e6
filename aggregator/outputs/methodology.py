"""The report's methodology section: each formula, its basis and source, the reference values used, the
config version and the data lineage, so an auditor can trace every figure to its inputs.

The formulas are stated here in words for the reader; each names the SQL macro that computes it (a test
keeps the names real) and docs/accounting.md is the full reference. Everything else is read from the
store the report was built from (``sql/queries/report/methodology.sql``).
"""

from __future__ import annotations

from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import duckdb

from wattfleet import sql
from wattfleet.aggregator.outputs.sections import Section

METHODOLOGY = "queries/report/methodology.sql"


class Formula(NamedTuple):
    figure: str
    formula: str
    basis: str
    macro: str  # the one implementation, in sql/macros.sql
    reference: str


FORMULAS = (
    Formula("Facility energy (kWh)", "IT kWh x PUE(site, hour)",
            "measured or estimated IT energy (GPU, CPU package, DRAM, unmetered overhead); PUE from an hourly meter, "
            "else a metered period, else the site's configured value", "facility_kwh",
            "ISO/IEC 30134-2 (PUE); accounting.md 3-4"),
    Formula("Scope 1, stationary combustion", "litres x kg CO2e per litre", "generator diesel per site-month",
            "scope1_diesel_kg", "GHG Protocol Corporate Standard; U.S. EPA GHG Emission Factors Hub; accounting.md 8"),
    Formula("Scope 1, fugitive emissions", "kg leaked x GWP (100-year)", "refrigerant per site-month",
            "scope1_refrigerant_kg", "GHG Protocol Corporate Standard; IPCC assessment reports; accounting.md 8"),
    Formula("Scope 2, location-based", "sum over hours of facility kWh x hourly average grid intensity",
            "average (never marginal) intensity of the site's zone and hour, on the direct (generation) basis: "
            "a life-cycle source's direct part where the hour's generation mix splits it (EIA-930)",
            "scope2_location_g",
            "GHG Protocol Scope 2 Guidance (2015), location-based method; accounting.md 5.5, 6.1"),
    Formula("Scope 2, market-based", "facility kWh x (covered x instrument factor + (1 - covered) x residual mix)",
            "instruments spread over their period, capped at each site-month's consumption; residual mix per site",
            "scope2_market_g", "GHG Protocol Scope 2 Guidance (2015), market-based method; accounting.md 6.2"),
    Formula("Scope 3 Category 2: Capital goods", "units acquired x cradle-to-gate kg CO2e per unit",
            "in full in the period of the acquisition date (GHG inventory view)", "scope3_capital_goods_kg",
            "GHG Protocol Scope 3 Standard (2011), Category 2; accounting.md 9.1"),
    Formula("Scope 3 Category 3: Fuel- and energy-related activities",
            "facility kWh x the hour's upstream factor",
            "the upstream part of a split life-cycle grid intensity (lifecycle - direct, hourly) where there is "
            "one, else the site's configured factor (T&D losses and well-to-tank); 0 on an unsplit life-cycle hour",
            "scope3_upstream_g", "GHG Protocol Scope 3 Standard (2011), Category 3; accounting.md 5.5, 9.2"),
    Formula("Embodied carbon, amortized (per-use view)", "kg CO2e per unit x hours used / (life years x 8760)",
            "per GPU-hour and node-hour reported; not part of the GHG inventory", "embodied_share",
            "Green Software Foundation SCI (ISO/IEC 21031:2024); accounting.md 9.1"),
    Formula("SCI per functional unit", "(E x I + M) / R",
            "E x I = location-based Scope 2 in the boundary named; M = amortized embodied; R = functional units",
            "sci", "Green Software Foundation SCI (ISO/IEC 21031:2024); accounting.md 11"),
    Formula("Water, on-site", "WUE (L per IT kWh) x IT kWh", "site cooling water", "water_onsite_l",
            "ISO/IEC 30134-9 (WUE); accounting.md 10"),
    Formula("Water, off-site", "facility kWh x grid water intensity (L/kWh)", "water of power generation",
            "water_offsite_l", "accounting.md 10"),
)
FORMULA_COLUMNS = ["figure", "formula", "basis", "implemented in (sql/macros.sql)", "reference"]

# (heading, block of methodology.sql, what the table says)
LINEAGE = (
    ("Config version", "config_version", "The facility config the period's facts were built with and the one "
     "loaded last, with the SHA-256 of their bytes (in groups of 8 hex digits): the same hash means the same "
     "configuration."),
    ("Store schema", "schema_version", "The store's migrations version (sql/schema)."),
    ("Energy telemetry", "telemetry_lineage", "Where the period's energy readings came from."),
    ("Grid intensity", "grid_lineage", "Intensity sources per zone: hours observed and filled, and the fill rules."),
)
REFERENCE_VALUES = (
    ("Site factors", "site_reference_values", "Configured per site (none shipped by wattfleet: see accounting.md 16)."),
    ("Embodied carbon", "embodied_reference_values", "Per unit, from the config; units acquired in the period enter "
     "Scope 3 Category 2 in full."),
    ("Scope 1 activity data", "scope1_reference_values", "Sources configured for the period's months."),
)


def _query(con: duckdb.DuckDBPyConnection, block: str, params: dict[str, Any]
           ) -> tuple[list[str], list[tuple[Any, ...]]]:
    text = sql.load(f"{METHODOLOGY}#{block}")
    rel = con.execute(text, {k: v for k, v in params.items() if k in sql.parameters(text)} or None)
    return [d[0] for d in rel.description], rel.fetchall()


def _version() -> str:
    try:
        return metadata.version("wattfleet")
    except metadata.PackageNotFoundError:  # a source tree without an install
        return "unknown"


def methodology_sections(con: duckdb.DuckDBPyConnection, db: str | Path, start: datetime, end: datetime
                         ) -> list[Section]:
    """The section and its parts, read from the open store ``con`` for [start, end)."""
    params = {"month_start": start, "month_end": end}
    intro = (f"Period [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC; store {db}; wattfleet "
             f"{_version()}. Every figure of this report is read from that store's facts and rollups, built from "
             "the telemetry, grid data and config below. Units: kg CO2e, kWh, L; rates in g CO2e per functional "
             "unit. docs/accounting.md is the full reference (formulas, conventions, contestable choices).")
    out = [Section("methodology", "Methodology", intro),
           Section("methodology_formulas", "Formulas", "Each figure, its basis and reference, and the SQL macro "
                   "that computes it.", FORMULA_COLUMNS, [tuple(f) for f in FORMULAS], level=3)]
    for part, items in (("Data lineage", LINEAGE), ("Reference values", REFERENCE_VALUES)):
        for heading, block, note in items:
            cols, rows = _query(con, block, params)
            out.append(Section(f"methodology_{block}", f"{part}: {heading}", note, cols, rows, empty="None.",
                               level=3))
    return out
