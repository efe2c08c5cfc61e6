"""What every column of every report CSV/Parquet file means: the README written next to the files.

A sustainability team loads the files as they are, so each column is described once here; the report
writes ``README.md`` into its output folder from this table and docs/report_columns.md is the same text
(tests keep every written column described and the doc current).
"""

from __future__ import annotations

from pathlib import Path

PERIOD = {
    "period_start": "Start of the period the row covers, inclusive, UTC (the report's month; daily: the day).",
    "period_end": "End of the period, exclusive, UTC: the row covers [period_start, period_end).",
}
_KG = "kg CO2e"
_EMB = ("embodied carbon amortized over service life by hours of use (per-use view, SCI's M), kg CO2e; "
        "not the GHG inventory's Scope 3 Category 2")

_TEAM = ("Team: a name from the config's teams: rules, or, in parentheses, energy of no workload: (idle), "
         "(system), (unallocated) (a GPU no pod holds), (unattributed) (a node without workload series), "
         "(unmapped) (a workload no rule matches).")

# table -> (what one row is, {column: meaning}); period columns are described once (PERIOD).
TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "ghg_inventory": (
        "The GHG inventory, tidy: one row per site, scope, category and basis; components only, never totals "
        "(those are in ghg_totals). Sum quantity over rows of one basis plus the 'both' rows for a total.", {
            "site": "Site name; '(no site)': facts of nodes no site claims, or capital goods acquired with no site.",
            "scope": "GHG Protocol scope: 'Scope 1', 'Scope 2' or 'Scope 3'.",
            "category": "GHG Protocol category: Stationary combustion, Fugitive emissions (Scope 1); Purchased "
                        "electricity (Scope 2); Category 2: Capital goods, Category 3: Fuel- and energy-related "
                        "activities (not included in Scope 1 or Scope 2) (Scope 3).",
            "basis": "'location-based' or 'market-based' (Scope 2 methods); 'both': the figure does not depend on "
                     "the Scope 2 method and belongs to both totals.",
            "quantity": "Emissions of the row, in unit.",
            "unit": f"Always '{_KG}'.",
        }),
    "activity_data": (
        "The activity data behind the inventory, tidy: one row per site, scope, category and basis; components "
        "only. Sum quantity only within one unit (a site's kWh rows add up to its facility energy).", {
            "site": "Site name; '(no site)': nodes no site claims.",
            "scope": "'Scope 1', 'Scope 2' (electricity) or 'Water'.",
            "category": "What was consumed: IT equipment or facility overhead electricity, fuel, refrigerant, "
                        "on-site or off-site water.",
            "basis": "How the quantity is known: measured, estimated (IT energy), PUE (facility overhead), WUE, "
                     "grid water intensity, fuel burnt, refrigerant leaked (with the gas).",
            "quantity": "The amount, in unit.",
            "unit": "'kWh', 'L' or 'kg' (refrigerant mass, not CO2e).",
        }),
    "ghg_totals": (
        "Totals of ghg_inventory per site and for the organisation, per scope and basis and for all scopes. "
        "Every row is a total: do not sum this table.", {
            "level": "'site' (one site's totals) or 'organisation' (all sites and '(no site)').",
            "site": "Site name for level 'site'; empty for 'organisation'.",
            "scope": "'Scope 1', 'Scope 2', 'Scope 3' or 'Scope 1 + Scope 2 + Scope 3'.",
            "basis": "'location-based' or 'market-based' total; 'both' for Scope 1 and Scope 3 (the same under "
                     "either method).",
            "quantity": "The total, in unit.",
            "unit": f"Always '{_KG}'.",
        }),
    "ghg_summary": (
        "The report's GHG Protocol summary for the organisation: every standard line, location- and "
        "market-based side by side, with per-scope and all-scope totals marked is_total.", {
            "scope": "GHG Protocol scope ('Scope 1 + Scope 2 + Scope 3' on the grand total).",
            "category": "GHG Protocol category, 'Total Scope N' on a scope's total, 'Total' on the grand total.",
            "location_based_kg_co2e": "The line with Scope 2 location-based, kg CO2e.",
            "market_based_kg_co2e": "The line with Scope 2 market-based, kg CO2e.",
            "is_total": "true on total rows: sum only the rows with false.",
        }),
    "sci": (
        "The amortized per-use view (Green Software Foundation SCI): one row per figure and subject. "
        "quantity = (operational + embodied) / functional_units.", {
            "figure": "Name of the figure: sci_g_per_gpu_hour_gpu_boards, sci_g_per_gpu_hour_whole_nodes, "
                      "sci_g_per_1k_tokens, sci_g_per_request.",
            "subject": "'fleet', or 'engine / model' for inference figures.",
            "functional_unit": "The functional unit R (one GPU-hour, 1,000 tokens, one request).",
            "boundary": "What the numerator includes (energy, intensity and embodied carbon counted).",
            "operational_location_kg_co2e": "E x I: location-based Scope 2 of the energy in the boundary, kg CO2e.",
            "embodied_amortized_kg_co2e": "M: " + _EMB + ".",
            "functional_units": "R: GPU-hours (distinct GPU and hour), thousands of tokens, or requests.",
            "quantity": "The SCI figure, in unit.",
            "unit": "'g CO2e per <functional unit>'.",
        }),
    "market_coverage": (
        "Market-based Scope 2 per site: how much of the site's energy contractual instruments covered and the "
        "residual mix that priced the rest.", {
            "site": "Site name.",
            "zone": "The site's grid zone (the market of market instruments).",
            "facility_kwh": "The site's facility energy (IT x PUE), kWh.",
            "instruments_allocated_kwh": "Instrument volume falling in the period allocated to the site, kWh.",
            "instruments_applied_kwh": "The part applied after the cap at the site-month's consumption, kWh.",
            "coverage_percent": "instruments_applied_kwh / facility_kwh x 100.",
            "residual_kwh": "facility_kwh - instruments_applied_kwh: energy priced at the residual mix, kWh.",
            "residual_mix_g_per_kwh": "The site's residual-mix emission factor, g CO2e/kWh (empty: none configured).",
            "residual_mix_source": "Where the residual-mix factor comes from (config), or what was used instead.",
            "residual_mix_missing": "true when some energy had no residual mix and took the location-based intensity.",
            "instruments": "Names of the instruments applied, comma-separated.",
            "scope2_location_kg": "Location-based Scope 2 of the site, kg CO2e.",
            "scope2_market_kg": "Market-based Scope 2 of the site, kg CO2e.",
        }),
    "market_instruments": (
        "Each contractual instrument applied to a site in the period.", {
            "site": "Site name.",
            "instrument": "Instrument name (config).",
            "type": "ppa, rec, go or green_tariff.",
            "claimed_for": "'site', or 'market <zone>' for an instrument shared by the zone's sites by consumption.",
            "vintage_start_utc": "Start of the instrument's period (when its energy was generated), UTC.",
            "vintage_end_utc": "End of the instrument's period, exclusive, UTC.",
            "instrument_g_per_kwh": "The instrument's emission factor, g CO2e/kWh.",
            "allocated_kwh": "Its volume falling in the period allocated to the site, kWh.",
            "applied_kwh": "The part applied after the cap at the site-month's consumption, kWh.",
        }),
    "sites": (
        "Per site, the period's energy, emissions (kg CO2e) and water (L).", {
            "site": "Site name.",
            "it_kwh": "IT energy (GPU, CPU package, DRAM, unmetered overhead), kWh.",
            "it_kwh_measured": "Part of it_kwh measured by hardware counters, kWh.",
            "it_kwh_estimated": "Part of it_kwh estimated (CPU model, overhead line), kWh.",
            "facility_kwh": "IT energy x PUE, kWh.",
            "effective_pue": "facility_kwh / it_kwh.",
            "scope1_kg": "The site's Scope 1 (generators, refrigerants) in the facts, kg CO2e; ghg_inventory has it "
                         "from the config even for a month without energy.",
            "scope2_location_kg": "Location-based Scope 2, kg CO2e.",
            "scope2_market_kg": "Market-based Scope 2, kg CO2e.",
            "embodied_amortized_kg": _EMB + ".",
            "scope3_upstream_kg": "Scope 3 Category 3 (upstream of purchased electricity), kg CO2e.",
            "water_onsite_l": "On-site water: WUE x IT energy, L.",
            "water_offsite_l": "Off-site water of power generation, L.",
            "cfe_ratio": "Hourly carbon-free energy score (0-1) over the period.",
            "gpu_hours": "GPU device-hours in the facts (rows of GPU component).",
        }),
    "daily": (
        "Fleet energy, Scope 2 and water per day.", {
            "day": "The UTC day (same as period_start).",
            "it_kwh": "IT energy, kWh.",
            "facility_kwh": "Facility energy, kWh.",
            "scope2_location_kg": "Location-based Scope 2, kg CO2e.",
            "scope2_market_kg": "Market-based Scope 2, kg CO2e.",
            "water_l": "On-site plus off-site water, L.",
        }),
    "cfe_by_hour_of_day": (
        "The hourly CFE score per site and hour of day, over the period.", {
            "site": "Site name.",
            "hour_of_day_utc": "Hour of day, 0-23, UTC.",
            "cfe_ratio": "Carbon-free share of facility energy in that hour of day (0-1).",
            "facility_kwh": "Facility energy in that hour of day over the period, kWh.",
        }),
    "cfe_by_day_and_hour": (
        "The fleet's hourly CFE score (energy-weighted over sites) for each hour of the period; period_start "
        "and period_end bound the hour.", {
            "day": "The UTC day of the hour.",
            "hour_of_day_utc": "Hour of day, 0-23, UTC.",
            "cfe_ratio": "Carbon-free share of the hour's facility energy (0-1); empty when the hour had none.",
            "facility_kwh": "Facility energy in the hour, kWh.",
        }),
    "top_emitters": (
        "The ten nodes that caused the most emissions. Scope 1 stays at the site and is not in a node's figure.", {
            "node": "Node name.",
            "facility_kwh": "The node's facility energy, kWh.",
            "caused_location_kg": "scope2_location_kg + embodied_amortized_kg: the ranking figure, kg CO2e.",
            "scope2_location_kg": "Location-based Scope 2 of the node's facility energy, kg CO2e.",
            "embodied_amortized_kg": _EMB + ".",
        }),
    "by_dimension": (
        "Rollup totals per dimension (fleet, site, cluster, node, gpu_model, namespace, team). Sum rows within "
        "one dimension only: each dimension adds up to the fleet.", {
            "dimension": "fleet, site, cluster, node, gpu_model, namespace or team.",
            "key": "The dimension's value ('all' for the fleet).",
            "it_kwh": "IT energy, kWh.",
            "facility_kwh": "Facility energy, kWh.",
            "scope1_kg": "Scope 1, kg CO2e: only for the fleet and sites (it stays at the site), else empty.",
            "scope2_location_kg": "Location-based Scope 2, kg CO2e.",
            "scope2_market_kg": "Market-based Scope 2, kg CO2e.",
            "scope3_upstream_kg": "Scope 3 Category 3, kg CO2e.",
            "embodied_amortized_kg": _EMB + ".",
            "gpu_hours": "GPU device-hours (rows of GPU component).",
        }),
    "inference": (
        "Inference energy and SCI per engine, model and phase (prefill, decode, idle).", {
            "engine": "Serving engine (vllm, sglang, ...).",
            "model": "Model served.",
            "phase": "prefill, decode or idle.",
            "it_kwh": "GPU IT energy attributed to the phase, kWh.",
            "facility_kwh": "That energy x PUE, kWh.",
            "tokens": "Tokens processed in the phase.",
            "scope2_location_kg": "Location-based Scope 2 of the phase's energy, kg CO2e.",
            "embodied_amortized_kg": "The GPUs' amortized embodied carbon by the phase's share of their energy, "
                                     "kg CO2e (per-use view).",
            "sci_g_per_1k_tokens": "(scope2_location + embodied_amortized) in g per 1,000 tokens of the phase; "
                                   "empty when the phase had no attributed energy.",
            "it_joules_per_token": "IT energy per token of the phase, J.",
        }),
    "inference_engine_inputs": (
        "The per-engine sums inference_engines is derived from (hours with attributed phase energy only).", {
            "engine": "Serving engine.", "model": "Model served.",
            "methods": "Phase attribution methods seen (marked, phase_time, token_fit), comma-separated.",
            "prefill_kwh": "Prefill IT energy, kWh.", "decode_kwh": "Decode IT energy, kWh.",
            "idle_kwh": "Idle IT energy of the engine's GPUs, kWh.",
            "prefill_tokens": "Prefill tokens.", "decode_tokens": "Decode tokens.",
            "requests": "Requests served in the period (all hours).",
            "attributed_requests": "Requests in hours with attributed phase energy.",
            "scope2_location_kg": "Location-based Scope 2 of the attributed energy, kg CO2e.",
            "hours_without_phase_energy": "Engine-hours with tokens but no attributed energy (fit declined).",
            "fit_status": "Token fit: fitted, declined, or fitted on N of M nodes.",
            "fit_r_squared": "Lowest R squared of the fitted nodes.",
            "fit_intervals": "Intervals the fits used.",
            "fit_reason": "Why a fit declined.",
            "fit_cached_term": "How the fitted token models treated cached prompt tokens, '; '-separated.",
            "split_prefill_kwh": "Prefill IT energy of the hours the engine split its prompt tokens, kWh.",
            "split_prefill_tokens": "Prefill (computed) tokens of those hours.",
            "computed_tokens": "Prompt tokens that ran through a forward pass.",
            "cached_tokens": "Prompt tokens served from the engine's prefix cache.",
            "transferred_tokens": "Prompt tokens whose KV came from another instance.",
            "unsplit_tokens": "Prompt tokens of an engine that does not say which source they came from.",
            "split_node_hours": "Node-hours in which the engine split its prompt tokens by source.",
            "unsplit_node_hours": "Node-hours in which it did not.",
            "phase_attribution": "The exporter's stated phase-attribution assumption(s), '; '-separated.",
        }),
    "inference_engines": (
        "Per-engine energy figures (from inference_engine_inputs).", {
            "engine": "Serving engine.", "model": "Model served.",
            "method": "Phase attribution methods ('-' when none).",
            "joules_per_prefill_token": "Prefill IT energy per prefill token, J.",
            "joules_per_decode_token": "Decode IT energy per decode token, J.",
            "joules_per_request": "All the engine's IT energy (idle included) per request, J.",
            "tokens_per_joule": "Prefill + decode tokens per J of all the engine's IT energy.",
            "scope2_location_g_per_1k_tokens": "Location-based Scope 2 of that energy, g CO2e per 1,000 prefill + "
                                               "decode tokens (no embodied carbon: see sci for SCI figures).",
            "requests": "Requests served in the period.",
            "hours_without_phase_energy": "Engine-hours with tokens but no attributed energy.",
            "fit_status": "Token fit status.", "fit_r_squared": "Lowest R squared of the fitted nodes.",
            "fit_intervals": "Intervals the fits used.", "fit_reason": "Why a fit declined.",
            "prompt_split": "Whether the engine split prompt tokens into computed, cached and transferred "
                            "('by engine', 'not split by engine', or partial).",
            "joules_per_computed_prefill_token": "Prefill IT energy per computed prompt token, over the hours "
                                                 "the engine split them, J.",
            "cache_hit_ratio": "Share of the split prompt tokens served from the prefix cache (0-1).",
            "transferred_prompt_ratio": "Share of the split prompt tokens whose KV came from elsewhere (0-1).",
            "fit_cached_tokens": "How the fitted token models treated cached prompt tokens.",
            "phase_attribution": "The exporter's stated phase-attribution assumption(s), '; '-separated "
                                 "(mixed_forward_as_prefill: prefill energy overstated, decode's understated).",
        }),
    "data_quality": (
        "Counts of the period's facts that rest on filled, missing, estimated or default inputs.", {
            "hours_with_data": "Hours with any fact.",
            "zone_hours_filled_intensity": "Zone-hours whose grid intensity was filled, not observed.",
            "zone_hours_missing_intensity": "Zone-hours with no intensity at all (no Scope 2 computed).",
            "estimated_share": "Share of IT energy that is estimated (0-1).",
            "unmapped_nodes": "Nodes no configured site claims.",
            "sites_without_residual_mix": "Sites whose market-based figure used location-based intensity.",
            "site_hours_metered_pue": "Site-hours with a metered (not default) PUE.",
        }),
    "data_quality_zones": (
        "Grid data quality per zone: the hours resting on filled or implausible intensity and the energy and "
        "location-based Scope 2 on them (docs/accounting.md 5.4).", {
            "zone": "Grid zone.",
            "intensity_sources": "Intensity sources of the zone's hours, '; '-separated.",
            "hours": "Zone-hours with facts.",
            "filled_hours": "Hours whose intensity was filled, not observed.",
            "filled_hours_utc": "Those hours as ISO 8601 UTC intervals start/end (half-open), '; '-separated.",
            "fill_rules": "Fill rules used, with their hour counts.",
            "filled_intensity_kwh": "Facility energy of the filled hours, kWh.",
            "filled_intensity_kg": "Location-based Scope 2 of the filled hours, kg CO2e.",
            "implausible_hours": "Hours the source's own generation mix makes implausible.",
            "implausible_hours_utc": "Those hours as ISO 8601 UTC intervals, '; '-separated.",
            "implausible_kwh": "Facility energy of the implausible hours, kWh.",
            "implausible_kg": "Location-based Scope 2 of the implausible hours, kg CO2e.",
            "missing_intensity_hours": "Hours with no intensity (no Scope 2 computed).",
            "estimated_energy_kwh": "Estimated (not measured) facility energy, kWh.",
            "estimated_energy_kg": "Location-based Scope 2 of the estimated energy, kg CO2e.",
            "facility_kwh": "All facility energy of the zone, kWh.",
            "scope2_location_kg": "All location-based Scope 2 of the zone, kg CO2e.",
        }),
    "data_quality_hours": (
        "One row per zone, hour and issue (tidy). An hour with two issues has two rows: sum within one issue.", {
            "zone": "Grid zone.",
            "hour_utc": "Start of the hour, UTC.",
            "issue": "filled, implausible or missing_intensity.",
            "detail": "The fill rule, the implausibility reason, or why the intensity is missing.",
            "facility_kwh": "Facility energy of the zone's hour, kWh.",
            "scope2_location_kg": "Location-based Scope 2 of the zone's hour, kg CO2e (0 when missing).",
        }),
    "rejections": (
        "Readings the exporters rejected or failed to take; none of them is in any figure.", {
            "site": "Site of the node (empty when unmapped).", "node": "Node name.",
            "collector": "Collector (nvml, rapl, inference:<engine>, ...).", "reason": "Why the reading was refused.",
            "readings": "How many readings, rounded to whole readings.",
        }),
    "by_team": (
        "Energy, emissions and water by team: each team's workloads' shares of their nodes (namespace and team "
        "come only from the exporter's workload series). The rows add up to the fleet.", {
            "team": _TEAM,
            "it_kwh": "IT energy, kWh.", "facility_kwh": "Facility energy (IT x the site-hour PUE), kWh.",
            "scope2_location_kg": "Scope 2 location-based, kg CO2e.",
            "scope2_market_kg": "Scope 2 market-based, kg CO2e.",
            "scope3_embodied_kg": _EMB + ".",
            "water_l": "On-site plus off-site water, L.",
            "facility_share_ratio": "The team's part of the fleet's facility energy, 0..1.",
        }),
    "chargeback_by_team": (
        "The monthly chargeback table: one row per team, every figure a split of its nodes' accounted figures by "
        "the team's workloads' energy (docs/accounting.md, section 20). Same rows as by_team.", {
            "team": _TEAM,
            "workloads": "Distinct workloads (cluster, namespace, owner) of the team in the month; 0 on the "
                         "parenthesized rows.",
            "it_kwh": "IT energy, kWh.", "it_kwh_measured": "The measured part of it_kwh, kWh.",
            "facility_kwh": "Facility energy (IT x the site-hour PUE), kWh.",
            "scope1_kg": "Share of the sites' Scope 1 (by facility energy), kg CO2e.",
            "scope2_location_kg": "Scope 2 location-based, kg CO2e.",
            "scope2_market_kg": "Scope 2 market-based, kg CO2e.",
            "scope3_embodied_kg": _EMB + ".",
            "scope3_upstream_kg": "Scope 3 Category 3 (upstream energy), kg CO2e.",
            "total_location_kg": "scope1 + scope2 location + scope3 embodied + scope3 upstream, kg CO2e (what a "
                                 "team budget counts).",
            "total_market_kg": "scope1 + scope2 market + scope3 embodied + scope3 upstream, kg CO2e.",
            "water_onsite_l": "On-site water (WUE x IT energy), L.", "water_offsite_l": "Off-site (grid) water, L.",
            "cfe_kwh": "Carbon-free facility energy (hourly CFE score x facility energy), kWh.",
            "gpu_hours": "GPU-hours, each GPU-hour split like its energy.",
        }),
}


def readme_text() -> str:
    """The README of a report folder: every file and every column, one table per file."""
    out = ["# wattfleet report tables", "",
           "Every table ships as CSV and Parquet with the same columns. Units: emissions in kg CO2e (columns "
           "ending _kg or _kg_co2e), energy in kWh, water in L; rates say their unit in the name or the unit "
           "column (g CO2e per functional unit, g CO2e/kWh). docs/accounting.md defines every figure.", "",
           "Every file starts with the period columns:", "", "| column | meaning |", "|---|---|"]
    out += [f"| `{c}` | {d} |" for c, d in PERIOD.items()]
    for table, (what, cols) in TABLES.items():
        out += ["", f"## {table}.csv", "", what, "", "| column | meaning |", "|---|---|"]
        out += [f"| `{c}` | {d} |" for c, d in cols.items()]
    return "\n".join(out) + "\n"


def write_readme(out: Path) -> Path:
    path = out / "README.md"
    path.write_text(readme_text())
    return path
