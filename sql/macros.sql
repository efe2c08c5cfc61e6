-- The formula layer: every figure in the facts is computed through these macros, so the
-- chain in docs/accounting.md exists once, in one place, and the unit tests exercise exactly it.
-- Energies in kWh, intensities in gCO2e/kWh, emissions in grams, water in litres.

-- Sums inside the facts: each addend rounded to 1e-12 of its unit (kWh, g, L, J) and added as a
-- 128-bit integer, which is exact in any order, so the facts are bit-identical on every rebuild with
-- every DuckDB thread at work (a float sum depends on the order threads add row groups in). The
-- rounding is far below any figure reported (1e-12 kWh is 3.6 uJ); a value beyond 1e26 is an error.
CREATE OR REPLACE TEMP MACRO exact_sum(x) AS CAST(sum(CAST(x AS DECIMAL(38, 12))) AS DOUBLE);

-- Hardware counters are joules; accounting is kWh.
CREATE OR REPLACE TEMP MACRO joules_to_kwh(j) AS j / 3600000.0;

-- PUE = total facility energy / IT energy (>= 1 by definition).
CREATE OR REPLACE TEMP MACRO pue_ratio(total_kwh, it_kwh) AS total_kwh / it_kwh;

-- Facility energy = IT energy x PUE. Applied ONCE, in facts/, to IT energy only.
CREATE OR REPLACE TEMP MACRO facility_kwh(it_kwh, pue) AS it_kwh * pue;

-- Scope 2 location-based: facility energy x the hour's average grid intensity.
CREATE OR REPLACE TEMP MACRO scope2_location_g(facility_kwh, grams_per_kwh) AS facility_kwh * grams_per_kwh;

-- Scope 2 market-based: the covered share takes the instruments' factor, the rest the residual mix.
CREATE OR REPLACE TEMP MACRO scope2_market_g(facility_kwh, covered_ratio, instrument_grams_per_kwh,
                                        residual_grams_per_kwh) AS
    facility_kwh * (covered_ratio * instrument_grams_per_kwh + (1 - covered_ratio) * residual_grams_per_kwh);

-- 24/7 CFE score of one hour: min(consumption, carbon-free supply) / consumption.
CREATE OR REPLACE TEMP MACRO cfe_score(consumption_kwh, cfe_supply_kwh) AS
    CASE WHEN consumption_kwh > 0 THEN least(consumption_kwh, cfe_supply_kwh) / consumption_kwh END;

-- Scope 1: diesel litres x kgCO2e per litre (2.68 default); refrigerant kg x GWP. Results in kg.
CREATE OR REPLACE TEMP MACRO scope1_diesel_kg(liters, kg_per_liter := 2.68) AS liters * kg_per_liter;
CREATE OR REPLACE TEMP MACRO scope1_refrigerant_kg(kg, gwp) AS kg * gwp;

-- Scope 3 embodied share: C_manufacturing x hours used / (lifetime_years x 8760).
CREATE OR REPLACE TEMP MACRO embodied_share(total, hours_used, life_years) AS
    total * hours_used / (life_years * 8760.0);

-- Scope 3 category 2 (capital goods), GHG inventory view: every unit's full cradle-to-gate kgCO2e in the
-- reporting period of its acquisition (no amortization). Results in kg.
CREATE OR REPLACE TEMP MACRO scope3_capital_goods_kg(units, kg_per_unit) AS units * kg_per_unit;

-- Scope 3 category 3 (upstream, T&D losses): a factor on facility energy.
CREATE OR REPLACE TEMP MACRO scope3_upstream_g(facility_kwh, grams_per_kwh) AS facility_kwh * grams_per_kwh;

-- The hour's upstream factor (docs/accounting.md 5.5, 9.2): the part of a life-cycle grid intensity split
-- off by its generation mix when there is one (Scope 2 then used the direct rest); none when Scope 2 used
-- an unsplit life-cycle intensity (its upstream is inside it already); the site's flat factor when the
-- intensity is direct (or its basis is unknown). Never the flat factor on top of a life-cycle figure.
CREATE OR REPLACE TEMP MACRO upstream_grams_per_kwh(split_grams_per_kwh, basis, flat_grams_per_kwh) AS
    CASE WHEN split_grams_per_kwh IS NOT NULL THEN split_grams_per_kwh
         WHEN basis = 'lifecycle' THEN 0.0
         ELSE flat_grams_per_kwh END;

-- Water: on-site = WUE x IT energy; off-site = facility energy x the grid's water intensity.
CREATE OR REPLACE TEMP MACRO water_onsite_l(wue_liters_per_kwh, it_kwh) AS wue_liters_per_kwh * it_kwh;
CREATE OR REPLACE TEMP MACRO water_offsite_l(facility_kwh, liters_per_kwh) AS facility_kwh * liters_per_kwh;

-- Energy by workload: a workload's share of a node component's hour is its part of the energy the
-- exporter split for that node and component; every figure of the node's facts is split by it, so no
-- formula above is applied twice and the parts add up to the node (docs/accounting.md, section 20).
CREATE OR REPLACE TEMP MACRO share_ratio(part_joules, total_joules) AS
    CASE WHEN total_joules > 0 THEN part_joules / total_joules END;
CREATE OR REPLACE TEMP MACRO workload_part(node_figure, ratio) AS node_figure * ratio;

-- Green Software Foundation SCI: (E x I + M) per R, location-based intensity only.
CREATE OR REPLACE TEMP MACRO sci(energy_kwh, grams_per_kwh, embodied_g, functional_units) AS
    (energy_kwh * grams_per_kwh + embodied_g) / functional_units;
