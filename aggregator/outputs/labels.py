"""What each report column is called for people, and in which unit: the one label map.

The tables keep machine names (``scope2_location_kg``) in their CSV and
Parquet files, where scripts read them; the Markdown, HTML and PDF show
:func:`label` instead. A column not listed here still gets words and a unit
from its name's suffix (``_kwh`` kWh, ``_kg`` kgCO2e, ``_ratio`` %), so a
new section reads sensibly before anyone adds it to the map.
"""

from __future__ import annotations

from dataclasses import dataclass

# How a column's values are written: text (left-aligned), int (whole numbers), num (decimals chosen per
# column), pct (a ratio shown as a percentage), sig (each value its own three significant digits: a column
# whose rows are in different units, named by a unit column beside it).
KINDS = ("text", "int", "num", "pct", "sig")


@dataclass(frozen=True)
class Label:
    words: str
    unit: str = ""
    kind: str = ""  # "" = from the values (text for strings, int for integers, num for other numbers)

    @property
    def header(self) -> str:
        return f"{self.words} ({self.unit})" if self.unit else self.words


KG, G, T = "kg CO2e", "g CO2e", "t CO2e"
GKWH = "g CO2e/kWh"
LABELS: dict[str, Label] = {
    # keys and text
    "site": Label("Site"), "node": Label("Node"), "zone": Label("Grid zone"), "cluster": Label("Cluster"),
    "team": Label("Team"), "namespace": Label("Namespace"), "engine": Label("Engine"), "model": Label("Model"),
    "phase": Label("Phase"), "method": Label("Method"), "collector": Label("Collector"), "reason": Label("Reason"),
    "line": Label("Line"), "definition": Label("Definition"), "scope": Label("Scope"),
    "category": Label("Category"), "basis": Label("Basis"), "level": Label("Level"), "unit": Label("Unit"),
    "figure": Label("Figure"), "subject": Label("Subject"), "functional_unit": Label("Functional unit"),
    "boundary": Label("Boundary"), "quantity": Label("Quantity", kind="sig"),
    "dimension": Label("Dimension"), "key": Label("Key"),
    "day": Label("Day"), "month": Label("Month"), "kind": Label("Owner kind"), "owner": Label("Owner"),
    "fit_status": Label("Token fit"), "fit_reason": Label("Fit declined because"),
    # energy
    "it_kwh": Label("IT energy", "kWh"), "it_kwh_measured": Label("IT energy, measured", "kWh"),
    "it_kwh_estimated": Label("IT energy, estimated", "kWh"), "facility_kwh": Label("Facility energy", "kWh"),
    "effective_pue": Label("Effective PUE", kind="num"), "gpu_hours": Label("GPU hours", "h"),
    "gpu_kwh_per_gpu_hour": Label("GPU energy per GPU-hour", "kWh"),
    # emissions
    "tco2e": Label("Emissions", T),
    "location_based_kg_co2e": Label("Location-based", KG), "market_based_kg_co2e": Label("Market-based", KG),
    "operational_location_kg_co2e": Label("Operational, location-based", KG),
    "embodied_amortized_kg_co2e": Label("Embodied, amortized", KG),
    "functional_units": Label("Functional units", kind="sig"),
    "caused_location_kg": Label("Caused, location-based", KG),
    "embodied_amortized_kg": Label("Embodied, amortized", KG),
    "scope1_kg": Label("Scope 1", KG), "scope2_location_kg": Label("Scope 2, location-based", KG),
    "scope2_market_kg": Label("Scope 2, market-based", KG), "scope3_embodied_kg": Label("Scope 3, embodied", KG),
    "scope3_upstream_kg": Label("Scope 3, upstream energy", KG),
    "total_location_kg": Label("Total, location-based", KG),
    "scope2_location_g": Label("Scope 2, location-based", G), "embodied_g": Label("Embodied", G),
    "sci_g_per_1k_tokens": Label("SCI per 1k tokens", G), "sci_g_per_gpu_hour": Label("SCI per GPU-hour", G),
    "grams_co2e_per_1k_tokens": Label("Emissions per 1k tokens", G),
    "scope2_location_g_per_1k_tokens": Label("Scope 2 (location) per 1k tokens", G),
    "budget_kg": Label("Budget", KG), "used_kg": Label("Used", KG), "used_ratio": Label("Budget used", "%", "pct"),
    # water and CFE
    "water_onsite_l": Label("Water, on-site", "L"), "water_offsite_l": Label("Water, off-site", "L"),
    "water_l": Label("Water", "L"), "cfe_ratio": Label("CFE score", "%", "pct"),
    "hour_of_day_utc": Label("Hour of day (UTC)", kind="int"),
    # inference
    "tokens": Label("Tokens", kind="int"), "requests": Label("Requests", kind="int"),
    "it_joules_per_token": Label("IT energy per token", "J"),
    "joules_per_prefill_token": Label("Energy per prefill token", "J"),
    "joules_per_decode_token": Label("Energy per decode token", "J"),
    "joules_per_request": Label("Energy per request", "J"), "tokens_per_joule": Label("Tokens per joule"),
    "hours_without_phase_energy": Label("Hours without phase energy", "h", "int"),
    "fit_r_squared": Label("Fit R²", kind="num"), "fit_intervals": Label("Fit intervals", kind="int"),
    "prompt_split": Label("Prompt tokens split"),
    "joules_per_computed_prefill_token": Label("Energy per computed prefill token", "J"),
    "cache_hit_ratio": Label("Prefix cache hits", "%", "pct"),
    "transferred_prompt_ratio": Label("Prompt tokens transferred", "%", "pct"),
    "fit_cached_tokens": Label("Fit term for cached tokens"), "phase_attribution": Label("Phase attribution"),
    # data quality
    "hours_with_data": Label("Hours with data", "h", "int"),
    "zone_hours_filled_intensity": Label("Zone-hours with gap-filled grid intensity", kind="int"),
    "zone_hours_missing_intensity": Label("Zone-hours without grid intensity", kind="int"),
    "estimated_share": Label("IT energy estimated, not metered", "%", "pct"),
    "unmapped_nodes": Label("Nodes mapped to no site", kind="int"),
    "sites_without_residual_mix": Label("Sites without a residual mix", kind="int"),
    "site_hours_metered_pue": Label("Site-hours with metered PUE", kind="int"),
    "readings": Label("Readings", kind="int"),
    # grid data quality per zone
    "intensity_sources": Label("Intensity sources"), "filled_hours": Label("Filled hours", "h", "int"),
    "filled_hours_utc": Label("Filled hours (UTC)"), "fill_rules": Label("Fill rules"),
    "filled_intensity_kwh": Label("Energy in filled hours", "kWh"),
    "filled_intensity_kg": Label("Scope 2 in filled hours", KG),
    "implausible_hours": Label("Implausible hours", "h", "int"),
    "implausible_hours_utc": Label("Implausible hours (UTC)"),
    "implausible_kg": Label("Scope 2 in implausible hours", KG),
    "missing_intensity_hours": Label("Hours without intensity", "h", "int"),
    "estimated_energy_kwh": Label("Estimated energy", "kWh"),
    "estimated_energy_kg": Label("Scope 2 of estimated energy", KG),
    # flags the documents show as formatting, not as a column (markup.FLAG_COLUMNS)
    "is_total": Label("Total row"),
    # market-based Scope 2: instruments and coverage
    "instrument": Label("Instrument"), "instruments": Label("Instruments"), "type": Label("Type"),
    "claimed_for": Label("Claimed for"), "vintage_start_utc": Label("Vintage start (UTC)"),
    "vintage_end_utc": Label("Vintage end (UTC)"), "instrument_g_per_kwh": Label("Instrument factor", GKWH),
    "allocated_kwh": Label("Allocated", "kWh"), "applied_kwh": Label("Applied", "kWh"),
    "instruments_allocated_kwh": Label("Instruments allocated", "kWh"),
    "instruments_applied_kwh": Label("Instruments applied", "kWh"),
    "coverage_percent": Label("Coverage", "%", "num"), "residual_kwh": Label("Residual", "kWh"),
    "residual_mix_g_per_kwh": Label("Residual mix", GKWH), "residual_mix_source": Label("Residual mix source"),
    "residual_mix_missing": Label("No residual mix configured"),
    # methodology: versions, lineage and reference values (configured values are text, shown as given)
    "config_file": Label("Config file"), "config_sha256": Label("SHA-256"),
    "schema_version": Label("Schema version", kind="int"), "latest_migration": Label("Latest migration"),
    "source": Label("Source"), "signal": Label("Signal"), "hours": Label("Hours", "h", "int"),
    "nodes": Label("Nodes", kind="int"), "first_hour_utc": Label("First hour (UTC)"), "end_utc": Label("End (UTC)"),
    "hours_observed": Label("Hours observed", "h", "int"), "hours_filled": Label("Hours filled", "h", "int"),
    "pue_default": Label("Default PUE"), "pue_meter_readings": Label("PUE meter readings", kind="int"),
    "wue_liters_per_kwh": Label("WUE", "L/kWh"), "offsite_water_liters_per_kwh": Label("Off-site water", "L/kWh"),
    "residual_mix_grams_per_kwh": Label("Residual mix", GKWH), "upstream_grams_per_kwh": Label("Upstream", GKWH),
    "entry": Label("Entry", kind="int"), "matches": Label("Matches"),
    "kg_co2e_per_unit": Label("Embodied carbon per unit", KG), "life_years": Label("Service life", "years"),
    "units_acquired_in_period": Label("Units acquired in the period", kind="int"),
    "scope1_source": Label("Source"), "label": Label("Label"), "quantity_unit": Label("Unit"),
    "factor": Label("Factor"), "factor_unit": Label("Factor unit"), "formula": Label("Formula"),
    "reference": Label("Reference"),
    # shift analysis
    "workload": Label("Workload"), "emitted_kg": Label("Emitted", KG),
    "cleanest_hours_kg": Label("In its cleanest hours", KG), "cleanest_site": Label("Cleanest site"),
    "cleanest_site_kg": Label("At the cleanest site", KG), "saving_ratio": Label("Saving", "%", "pct"),
}
# Name suffix -> (words to drop, unit, kind), for columns the map does not list; longest suffix first.
SUFFIXES = (("_g_per_kwh", GKWH, ""), ("_grams_per_kwh", GKWH, ""), ("_liters_per_kwh", "L/kWh", ""),
            ("_percent", "%", "num"), ("_kwh", "kWh", ""), ("_kg_co2e", KG, ""), ("_g_co2e", G, ""),
            ("_kg", KG, ""), ("_g", G, ""), ("_tco2e", T, ""), ("_l", "L", ""),
            ("_ratio", "%", "pct"), ("_share", "%", "pct"), ("_joules", "J", ""), ("_watts", "W", ""),
            ("_hours", "h", ""), ("_seconds", "s", ""))
WORDS = {"co2e": "CO2e", "gpu": "GPU", "cpu": "CPU", "it": "IT", "pue": "PUE", "wue": "WUE", "cfe": "CFE",
         "sci": "SCI", "utc": "(UTC)", "1k": "1k", "kwh": "kWh"}


def guess(name: str) -> Label:
    """Words and unit from a column name, for columns the map does not list yet."""
    unit, kind, stem = "", "", name
    for suffix, u, k in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            unit, kind, stem = u, k, name[: -len(suffix)]
            break
    words = [WORDS.get(w, w) for w in stem.split("_") if w]
    text = " ".join(words) or name
    return Label(text[:1].upper() + text[1:], unit, kind)


def label(name: str) -> Label:
    """The label of a report column: the map's, else one made from the name."""
    return LABELS.get(name) or guess(name)
