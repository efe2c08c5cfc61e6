-- The report's accounting tables: the GHG inventory (GHG Protocol scope and category names), its totals,
-- the summary with location- and market-based Scope 2 side by side, and the amortized per-use (SCI) view.
-- Parameters $month_start and $month_end (TIMESTAMP, UTC) bound the period [start, end). Each block's
-- result is also a temp table report_<name>, so a later block reads an earlier one (queries.py).
-- Units: emissions in kg CO2e, energy in kWh, water in L; per-unit rates in g CO2e per functional unit.
-- docs/accounting.md (section 9 and "Report tables") says what each line includes.

-- name: ghg_inventory
-- Tidy: one row per period, site, scope, category and basis; components only (ghg_totals has the sums).
-- basis 'both': the figure does not depend on the Scope 2 method and belongs to both totals.
-- Scope 1 comes from the config's sources for the site-months (not the facts' per-row allocation);
-- Scope 3 Category 2 is each acquisition's full cradle-to-gate kgCO2e in the period of its date.
WITH f AS (
    SELECT coalesce(site, '(no site)') AS site, fsum(scope2_location_g) AS s2_location_g,
           fsum(scope2_market_g) AS s2_market_g, fsum(scope3_upstream_g) AS s3_cat3_g
      FROM fact_device_hour WHERE hour_utc >= $month_start AND hour_utc < $month_end GROUP BY ALL
), s1 AS (
    SELECT site, kind, fsum(CASE WHEN kind = 'diesel' THEN scope1_diesel_kg(quantity, kg_co2e_per_unit)
                                 ELSE scope1_refrigerant_kg(quantity, kg_co2e_per_unit) END) AS kg
      FROM dim_scope1 WHERE month >= CAST($month_start AS DATE) AND month < CAST($month_end AS DATE)
     GROUP BY ALL
), cat2 AS (
    SELECT coalesce(a.site, '(no site)') AS site, fsum(scope3_capital_goods_kg(a.units, e.kg_co2e)) AS kg
      FROM dim_embodied_acquisition a JOIN dim_embodied e USING (ord)
     WHERE a.acquired >= CAST($month_start AS DATE) AND a.acquired < CAST($month_end AS DATE)
     GROUP BY ALL
), lines AS (
    SELECT site, 'Scope 1' AS scope,
           CASE kind WHEN 'diesel' THEN 'Stationary combustion' ELSE 'Fugitive emissions' END AS category,
           'both' AS basis, kg FROM s1
    UNION ALL SELECT site, 'Scope 2', 'Purchased electricity', 'location-based', s2_location_g / 1000 FROM f
    UNION ALL SELECT site, 'Scope 2', 'Purchased electricity', 'market-based', s2_market_g / 1000 FROM f
    UNION ALL SELECT site, 'Scope 3', 'Category 2: Capital goods', 'both', kg FROM cat2
    UNION ALL SELECT site, 'Scope 3',
                     'Category 3: Fuel- and energy-related activities (not included in Scope 1 or Scope 2)',
                     'both', s3_cat3_g / 1000 FROM f
)
SELECT $month_start AS period_start, $month_end AS period_end, site, scope, category, basis, quantity,
       'kg CO2e' AS unit
  FROM (SELECT site, scope, category, basis, fsum(kg) AS quantity FROM lines GROUP BY ALL)
 ORDER BY site = '(no site)', site, scope, category, basis;

-- name: activity_data
-- The activity data behind the inventory, tidy like it: one row per period, site, scope, category and
-- basis, components only. Electricity: IT energy measured and estimated, plus the facility overhead that
-- PUE adds (the three add up to facility energy); Scope 1: diesel burnt (L) and refrigerant leaked (kg of
-- gas); water on-site and off-site (L, scope 'Water'). Sum quantity only within one unit.
WITH f AS (
    SELECT coalesce(site, '(no site)') AS site,
           fsum(it_kwh) FILTER (WHERE method = 'measured') AS it_measured_kwh,
           fsum(it_kwh) FILTER (WHERE method <> 'measured') AS it_estimated_kwh,
           fsum(facility_kwh) - fsum(it_kwh) FILTER (WHERE facility_kwh IS NOT NULL) AS overhead_kwh,
           fsum(water_onsite_l) AS onsite_l, fsum(water_offsite_l) AS offsite_l
      FROM fact_device_hour WHERE hour_utc >= $month_start AND hour_utc < $month_end GROUP BY ALL
), lines AS (
    SELECT site, 'Scope 2' AS scope, 'Purchased electricity: IT equipment' AS category, 'measured' AS basis,
           it_measured_kwh AS q, 'kWh' AS unit FROM f
    UNION ALL SELECT site, 'Scope 2', 'Purchased electricity: IT equipment', 'estimated', it_estimated_kwh, 'kWh' FROM f
    UNION ALL SELECT site, 'Scope 2', 'Purchased electricity: facility overhead (PUE)', 'PUE', overhead_kwh, 'kWh'
                FROM f
    UNION ALL SELECT site, 'Water', 'On-site water (WUE x IT energy)', 'WUE', onsite_l, 'L' FROM f
    UNION ALL SELECT site, 'Water', 'Off-site water (power generation)', 'grid water intensity', offsite_l, 'L'
                FROM f
    UNION ALL SELECT site, 'Scope 1', CASE kind WHEN 'diesel' THEN 'Stationary combustion'
                                                ELSE 'Fugitive emissions' END,
                     CASE kind WHEN 'diesel' THEN 'fuel burnt' ELSE 'refrigerant leaked: ' || coalesce(label, '') END,
                     quantity, CASE kind WHEN 'diesel' THEN 'L' ELSE 'kg' END
                FROM dim_scope1 WHERE month >= CAST($month_start AS DATE) AND month < CAST($month_end AS DATE)
)
SELECT $month_start AS period_start, $month_end AS period_end, site, scope, category, basis, quantity, unit
  FROM (SELECT site, scope, category, basis, unit, fsum(q) AS quantity FROM lines WHERE q IS NOT NULL GROUP BY ALL)
 ORDER BY site = '(no site)', site, scope, category, basis;

-- name: ghg_totals
-- Totals of ghg_inventory, in their own table: per site and for the organisation (level), per scope and
-- basis, and all scopes. A location-based total adds the 'location-based' and 'both' lines; a
-- market-based total the 'market-based' and 'both' lines. Every row is a total: never sum this table.
WITH b AS (SELECT * FROM (VALUES ('location-based'), ('market-based')) t(total_basis)),
scoped AS (
    SELECT i.site, i.scope, b.total_basis, i.basis, i.quantity
      FROM report_ghg_inventory i JOIN b ON i.basis IN (b.total_basis, 'both')
), per_scope AS (
    SELECT site, scope, CASE WHEN scope = 'Scope 2' THEN total_basis ELSE 'both' END AS basis,
           fsum(quantity) AS q
      FROM scoped WHERE scope <> 'Scope 2' AND total_basis = 'location-based' OR scope = 'Scope 2'
     GROUP BY ALL
), all_scopes AS (
    SELECT site, 'Scope 1 + Scope 2 + Scope 3' AS scope, total_basis AS basis, fsum(quantity) AS q
      FROM scoped GROUP BY ALL
), site_rows AS (SELECT * FROM per_scope UNION ALL SELECT * FROM all_scopes)
SELECT $month_start AS period_start, $month_end AS period_end, level, site, scope, basis, quantity,
       'kg CO2e' AS unit
  FROM (SELECT 'site' AS level, site, scope, basis, q AS quantity FROM site_rows
        UNION ALL
        SELECT 'organisation', NULL, scope, basis, fsum(q) FROM site_rows GROUP BY ALL)
 ORDER BY level = 'site', site, scope, basis;

-- name: ghg_summary
-- The report's GHG Protocol summary for the organisation: every standard line (0 when nothing was
-- reported), location- and market-based side by side, then per-scope and all-scope totals marked
-- is_total. Only the rows with is_total = false add up to the total.
WITH lines(line_order, scope, category) AS (VALUES
    (1, 'Scope 1', 'Stationary combustion'),
    (2, 'Scope 1', 'Fugitive emissions'),
    (4, 'Scope 2', 'Purchased electricity'),
    (6, 'Scope 3', 'Category 2: Capital goods'),
    (7, 'Scope 3', 'Category 3: Fuel- and energy-related activities (not included in Scope 1 or Scope 2)')
), sums AS (
    SELECT scope, category,
           fsum(quantity) FILTER (WHERE basis IN ('location-based', 'both')) AS location_based_kg_co2e,
           fsum(quantity) FILTER (WHERE basis IN ('market-based', 'both')) AS market_based_kg_co2e
      FROM report_ghg_inventory GROUP BY ALL
), detail AS (
    SELECT l.line_order, l.scope, l.category, false AS is_total,
           coalesce(s.location_based_kg_co2e, 0) AS location_based_kg_co2e,
           coalesce(s.market_based_kg_co2e, 0) AS market_based_kg_co2e
      FROM lines l LEFT JOIN sums s USING (scope, category)
), scope_totals AS (
    SELECT CASE scope WHEN 'Scope 1' THEN 3 WHEN 'Scope 2' THEN 5 ELSE 8 END AS line_order, scope,
           'Total ' || scope AS category, true AS is_total,
           fsum(location_based_kg_co2e) AS location_based_kg_co2e, fsum(market_based_kg_co2e) AS market_based_kg_co2e
      FROM detail GROUP BY scope
), grand AS (
    SELECT 9 AS line_order, 'Scope 1 + Scope 2 + Scope 3' AS scope, 'Total' AS category, true AS is_total,
           fsum(location_based_kg_co2e), fsum(market_based_kg_co2e)
      FROM detail
)
SELECT $month_start AS period_start, $month_end AS period_end, scope, category, location_based_kg_co2e,
       market_based_kg_co2e, is_total
  FROM (SELECT * FROM detail UNION ALL SELECT * FROM scope_totals UNION ALL SELECT * FROM grand)
 ORDER BY line_order;

-- name: sci
-- The amortized per-use view (Green Software Foundation SCI, ISO/IEC 21031): (E x I + M) per R with
-- location-based intensity; no market instruments, no Scope 1, no Scope 3 Category 3. E x I is the
-- summed hourly scope2_location_g (facility energy, PUE included); M the embodied carbon amortized by
-- hours of use (facts' scope3_embodied_g). Each figure names its functional unit R and its boundary.
-- GPU-hours count distinct (hour, node, GPU): a GPU split across namespaces in an hour is one GPU-hour.
WITH f AS (
    SELECT * FROM fact_device_hour WHERE hour_utc >= $month_start AND hour_utc < $month_end
), fleet AS (
    SELECT fsum(scope2_location_g) FILTER (WHERE component = 'gpu') AS gpu_ei_g,
           fsum(scope3_embodied_g) FILTER (WHERE component = 'gpu') AS gpu_m_g,
           fsum(scope2_location_g) AS node_ei_g, fsum(scope3_embodied_g) AS node_m_g,
           count(DISTINCT (hour_utc, node, device)) FILTER (WHERE component = 'gpu') AS gpu_hours
      FROM f
), gpu AS (
    SELECT hour_utc, node, fsum(it_kwh) AS kwh, fsum(scope3_embodied_g) AS embodied_g
      FROM f WHERE component = 'gpu' GROUP BY ALL
), eh AS (
    -- per engine-hour, so that hours without attributed energy (a declined token fit) are left out
    -- of both numerator and denominator, as in the inference tables
    SELECT i.hour_utc, i.node, i.engine, i.model, fsum(i.it_kwh) AS kwh, fsum(i.scope2_location_g) AS ei_g,
           fsum(coalesce(g.embodied_g * least(i.it_kwh / nullif(g.kwh, 0), 1), 0)) AS m_g,
           fsum(i.tokens) FILTER (WHERE i.phase IN ('prefill', 'decode')) AS tokens
      FROM fact_inference_hour i LEFT JOIN gpu g ON g.hour_utc = i.hour_utc AND g.node = i.node
     WHERE i.hour_utc >= $month_start AND i.hour_utc < $month_end GROUP BY ALL
), rq AS (
    SELECT hour_utc, node, engine, model, fsum(requests) AS requests
      FROM stg_inference_engine_hourly WHERE hour_utc >= $month_start AND hour_utc < $month_end GROUP BY ALL
), eng AS (
    SELECT eh.engine, eh.model, fsum(ei_g) AS ei_g, fsum(m_g) AS m_g, fsum(tokens) AS tokens,
           fsum(rq.requests) AS requests
      FROM eh LEFT JOIN rq USING (hour_utc, node, engine, model) WHERE eh.kwh > 0 GROUP BY ALL
), rows(figure, subject, functional_unit, boundary, ei_g, m_g, r, unit_scale, unit) AS (
    SELECT 'sci_g_per_gpu_hour_gpu_boards', 'fleet', 'one GPU-hour',
           'GPU boards only: location-based Scope 2 of GPU energy (x PUE) + amortized embodied carbon of the GPUs',
           gpu_ei_g, gpu_m_g, gpu_hours, 1, 'g CO2e per GPU-hour' FROM fleet
    UNION ALL
    SELECT 'sci_g_per_gpu_hour_whole_nodes', 'fleet', 'one GPU-hour',
           'Whole nodes: location-based Scope 2 of GPU, CPU, DRAM and unmetered overhead energy (x PUE) + '
           || 'amortized embodied carbon of GPUs and nodes', node_ei_g, node_m_g, gpu_hours, 1,
           'g CO2e per GPU-hour' FROM fleet
    UNION ALL
    SELECT 'sci_g_per_1k_tokens', engine || ' / ' || model, '1,000 tokens (prefill + decode)',
           'Serving GPUs: location-based Scope 2 of the engine''s GPU energy, idle included (x PUE) + the '
           || 'GPUs'' amortized embodied carbon by the engine''s share of their energy', ei_g, m_g, tokens, 1000,
           'g CO2e per 1,000 tokens' FROM eng
    UNION ALL
    SELECT 'sci_g_per_request', e.engine || ' / ' || e.model, 'one request',
           'Serving GPUs: as sci_g_per_1k_tokens, divided by the engine''s requests', e.ei_g, e.m_g, e.requests, 1,
           'g CO2e per request' FROM eng e WHERE e.requests IS NOT NULL
)
SELECT $month_start AS period_start, $month_end AS period_end, figure, subject, functional_unit, boundary,
       ei_g / 1000 AS operational_location_kg_co2e, m_g / 1000 AS embodied_amortized_kg_co2e,
       r / unit_scale AS functional_units,
       CASE WHEN r > 0 THEN (coalesce(ei_g, 0) + coalesce(m_g, 0)) / (r / unit_scale) END AS quantity, unit
  FROM rows ORDER BY figure, subject;

-- name: market_instruments
-- Market-based transparency: every contractual instrument applied to a site in the period, with its type,
-- vintage (the period its energy was generated in), emission factor, the volume allocated to the site
-- and the part applied after the cap at consumption (facts step 035 computed both; nothing recomputed).
SELECT $month_start AS period_start, $month_end AS period_end, site, instrument, type, claimed_for,
       vintage_start_utc, vintage_end_utc, grams_per_kwh AS instrument_g_per_kwh, allocated_kwh, applied_kwh
  FROM fact_instrument_month
 WHERE month >= CAST($month_start AS DATE) AND month < CAST($month_end AS DATE)
 ORDER BY site, instrument;

-- name: market_coverage
-- Per site: consumption, instruments applied, coverage, and the residual-mix factor (and its source) that
-- prices the uncovered rest. Without a configured residual mix the hour's location-based intensity is used
-- and residual_mix_missing is true (docs/accounting.md 6.2): the market-based figure may be understated.
WITH f AS (
    SELECT site, fsum(facility_kwh) AS facility_kwh, fsum(scope2_location_g) AS s2_location_g,
           fsum(scope2_market_g) AS s2_market_g, bool_or(residual_mix_missing) AS residual_mix_missing
      FROM fact_device_hour WHERE hour_utc >= $month_start AND hour_utc < $month_end AND site IS NOT NULL
     GROUP BY ALL
), i AS (
    SELECT site, fsum(allocated_kwh) AS allocated_kwh, fsum(applied_kwh) AS applied_kwh,
           string_agg(instrument, ', ' ORDER BY instrument) AS instruments
      FROM fact_instrument_month WHERE month >= CAST($month_start AS DATE) AND month < CAST($month_end AS DATE)
     GROUP BY ALL
)
SELECT $month_start AS period_start, $month_end AS period_end, f.site, s.zone, f.facility_kwh,
       coalesce(i.allocated_kwh, 0) AS instruments_allocated_kwh, coalesce(i.applied_kwh, 0) AS instruments_applied_kwh,
       100.0 * coalesce(i.applied_kwh, 0) / nullif(f.facility_kwh, 0) AS coverage_percent,
       f.facility_kwh - coalesce(i.applied_kwh, 0) AS residual_kwh,
       s.residual_mix_grams_per_kwh AS residual_mix_g_per_kwh,
       CASE WHEN s.residual_mix_grams_per_kwh IS NULL
            THEN 'none configured: the hour''s location-based intensity is used'
            ELSE coalesce(s.residual_mix_source, 'not stated in the config') END AS residual_mix_source,
       f.residual_mix_missing, i.instruments,
       f.s2_location_g / 1000 AS scope2_location_kg, f.s2_market_g / 1000 AS scope2_market_kg
  FROM f JOIN dim_site s USING (site) LEFT JOIN i USING (site)
 ORDER BY f.site;
