"""One colour per quantity, shared by the report's charts and the Grafana dashboards.

A reader who sees Scope 2 (location-based) in blue on a dashboard should see
it in the same blue in the monthly report and its PDF, so both draw from this
table instead of choosing colours locally. The scope colours are the
Okabe-Ito palette (Okabe & Ito, "Color Universal Design", 2008), which stays
distinguishable with the common colour-vision deficiencies; the other
quantities use Paul Tol's muted scheme so that they never reuse a scope's
colour. Keys are the names the data already uses: the ``scope`` label values
of ``wattfleet_rollup_emissions_grams`` and the report's column stems.
"""

from __future__ import annotations

# GHG scopes: the label values wattfleet serve publishes (scope1, scope2_location, ...) plus the report's
# split of Scope 3 into its two categories. Scope 3 as a whole takes its embodied (largest) part's colour.
SCOPE_COLOURS: dict[str, str] = {
    "scope1": "#D55E00",  # vermillion
    "scope2_location": "#0072B2",  # blue
    "scope2_market": "#56B4E9",  # sky blue: the same scope, the contractual view
    "scope3": "#009E73",  # bluish green
    "scope3_embodied": "#009E73",
    "scope3_upstream": "#E69F00",  # orange
}
# Everything else that is drawn as a series.
QUANTITY_COLOURS: dict[str, str] = {
    "it_energy": "#332288",  # indigo
    "facility_energy": "#88CCEE",  # cyan: the facility total the IT energy sits inside
    "water_onsite": "#44AA99",  # teal
    "water_offsite": "#DDCC77",  # sand
    "cfe": "#117733",  # green
    "top_emitter": "#882255",  # wine
}
# Series with no fixed meaning (sites, nodes), in order; chosen to avoid the scope colours.
CATEGORY_COLOURS: tuple[str, ...] = ("#332288", "#CC6677", "#117733", "#AA4499", "#999933", "#882255",
                                     "#44AA99", "#DDCC77", "#88CCEE", "#6699CC")
# Hourly CFE heatmaps: a sequential green map (matplotlib's name), 0 % pale to 100 % dark green.
CFE_COLOURMAP = "YlGn"


def colour(key: str) -> str:
    """The colour of a scope or quantity; KeyError names the key when nothing is assigned."""
    if key in SCOPE_COLOURS:
        return SCOPE_COLOURS[key]
    if key in QUANTITY_COLOURS:
        return QUANTITY_COLOURS[key]
    raise KeyError(f"no colour assigned to {key!r}; add it to wattfleet.core.palette")


def category_colour(index: int) -> str:
    """The ``index``-th colour for series without a fixed meaning (wraps around)."""
    return CATEGORY_COLOURS[index % len(CATEGORY_COLOURS)]
