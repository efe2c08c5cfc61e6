-- Monthly report queries. Each block starts with "-- name: <table>"; parameters $month_start and
-- $month_end (TIMESTAMP, UTC) bound the month. Every figure comes from the facts or rollups:
-- nothing is recomputed here except sums and ratios of stored figures. The accounting tables (GHG
-- inventory, totals, summary, SCI) are in inventory.sql. Each analyst table starts with period_start and
-- period_end ([start, end), UTC); emissions are kg CO2e (columns ending _kg), energy kWh, water L.

-- name: sites
-- Scope 1 here is the site's monthly sources as the facts hold them (shared over the site's rows).
SELECT $month_start AS period_start, $month_end AS period_end, key AS site, it_kwh, it_kwh_measured, it_kwh_estimated, facility_kwh,
       facility_kwh / nullif(it_kwh, 0) AS effective_pue,
       scope1_g / 1000 AS scope1_kg, scope2_location_g / 1000 AS scope2_location_kg,
       scope2_market_g / 1000 AS scope2_market_kg, scope3_embodied_g / 1000 AS embodied_amortized_kg,
       scope3_upstream_g / 1000 AS scope3_upstream_kg, water_onsite_l, water_offsite_l,
       cfe_kwh / nullif(facility_kwh, 0) AS cfe_ratio, gpu_hours
  FROM rollup WHERE period = 'month' AND period_start = $month_start AND dimension = 'site' ORDER BY site;

-- name: daily
SELECT period_start, period_start + INTERVAL 1 DAY AS period_end, CAST(period_start AS DATE) AS day, it_kwh, facility_kwh, scope2_location_g / 1000 AS scope2_location_kg,
       scope2_market_g / 1000 AS scope2_market_kg, water_onsite_l + water_offsite_l AS water_l
  FROM rollup WHERE period = 'day' AND dimension = 'fleet' AND period_start >= $month_start
   AND period_start < $month_end ORDER BY period_start;

-- name: cfe_by_hour_of_day
SELECT $month_start AS period_start, $month_end AS period_end, site, hour(hour_utc) AS hour_of_day_utc, fsum(cfe_kwh) / nullif(fsum(facility_kwh), 0) AS cfe_ratio,
       fsum(facility_kwh) AS facility_kwh
  FROM fact_device_hour WHERE hour_utc >= $month_start AND hour_utc < $month_end AND site IS NOT NULL
 GROUP BY ALL ORDER BY site, hour_of_day_utc;

-- name: top_emitters
-- Ranked by the emissions a node causes: location-based Scope 2 of its facility energy plus its amortized
-- embodied share. Scope 1 (generators, refrigerant) stays at the site and is not in a node's figure.
SELECT $month_start AS period_start, $month_end AS period_end, key AS node, facility_kwh,
       (scope2_location_g + scope3_embodied_g) / 1000 AS caused_location_kg,
       scope2_location_g / 1000 AS scope2_location_kg, scope3_embodied_g / 1000 AS embodied_amortized_kg
  FROM rollup WHERE period = 'month' AND period_start = $month_start AND dimension = 'node'
 ORDER BY caused_location_kg DESC, node LIMIT 10;

-- name: by_dimension
-- Every row is a rollup total of its dimension: sum rows within one dimension only. Scope 1 appears only
-- for the fleet and sites (it stays at the site); the other dimensions carry what their energy causes.
SELECT $month_start AS period_start, $month_end AS period_end, dimension, key, it_kwh, facility_kwh,
       CASE WHEN dimension IN ('fleet', 'site') THEN scope1_g / 1000 END AS scope1_kg,
       scope2_location_g / 1000 AS scope2_location_kg, scope2_market_g / 1000 AS scope2_market_kg,
       scope3_upstream_g / 1000 AS scope3_upstream_kg, scope3_embodied_g / 1000 AS embodied_amortized_kg,
       gpu_hours
  FROM rollup WHERE period = 'month' AND period_start = $month_start
 ORDER BY dimension, key;

-- name: inference
-- SCI-style per-unit figures: (E x I + M) per 1k tokens, location-based intensity only. M is the
-- embodied carbon of the node's GPUs in the hour, shared by the phase's share of GPU energy.
WITH gpu AS (
    SELECT hour_utc, node, fsum(it_kwh) AS kwh, fsum(scope3_embodied_g) AS embodied_g
      FROM fact_device_hour WHERE component = 'gpu' AND hour_utc >= $month_start AND hour_utc < $month_end
     GROUP BY ALL
), i AS (
    SELECT f.engine, f.model, f.phase, f.it_kwh, f.facility_kwh, f.scope2_location_g, f.tokens,
           coalesce(g.embodied_g * least(f.it_kwh / nullif(g.kwh, 0), 1), 0) AS embodied_g
      FROM fact_inference_hour f LEFT JOIN gpu g ON g.hour_utc = f.hour_utc AND g.node = f.node
     WHERE f.hour_utc >= $month_start AND f.hour_utc < $month_end
)
SELECT $month_start AS period_start, $month_end AS period_end, engine, model, phase, fsum(it_kwh) AS it_kwh,
       fsum(facility_kwh) AS facility_kwh, fsum(tokens) AS tokens, fsum(scope2_location_g) / 1000 AS scope2_location_kg,
       fsum(embodied_g) / 1000 AS embodied_amortized_kg,
       -- a phase with no attributed energy (token fit declined) has no per-token figure, not 0
       CASE WHEN fsum(it_kwh) > 0 THEN (fsum(scope2_location_g) + fsum(embodied_g)) / nullif(fsum(tokens) / 1000, 0)
       END AS sci_g_per_1k_tokens,
       CASE WHEN fsum(it_kwh) > 0 THEN fsum(it_kwh) * 3.6e6 / nullif(fsum(tokens), 0) END AS it_joules_per_token
  FROM i GROUP BY ALL ORDER BY engine, model, phase;

-- name: inference_engine_inputs
-- Per engine and model: the month's phase energy (IT, as attributed), tokens, requests, Scope 2 of that
-- energy, the attribution method(s), and the token fit (latest run per node overlapping the month).
-- Figures use only the engine-hours that have attributed energy: an hour whose fit declined has tokens
-- but no phase energy, and counting its tokens would make energy per token look smaller than it is.
-- Prompt tokens by source (issue 14): the month's computed, cached, transferred and unsplit tokens and
-- how many node-hours the engine split them; the prefill energy and tokens of the split hours alone give
-- J per computed prefill token (an unsplit hour's prefill tokens include cache hits).
-- aggregator/outputs/tables.engine_report_table derives the per-engine figures from these sums.
WITH split_hour AS (
    SELECT hour_utc, node, engine, model, bool_or(split) AS split
      FROM fact_inference_prompt_hour WHERE hour_utc >= $month_start AND hour_utc < $month_end GROUP BY ALL
), eh AS (
    SELECT hour_utc, node, engine, model, fsum(it_kwh) AS kwh,
           fsum(it_kwh) FILTER (WHERE phase = 'prefill') AS prefill_kwh,
           fsum(it_kwh) FILTER (WHERE phase = 'decode') AS decode_kwh,
           fsum(it_kwh) FILTER (WHERE phase = 'idle') AS idle_kwh,
           fsum(tokens) FILTER (WHERE phase = 'prefill') AS prefill_tokens,
           fsum(tokens) FILTER (WHERE phase = 'decode') AS decode_tokens,
           fsum(scope2_location_g) AS scope2_location_g
      FROM fact_inference_hour WHERE hour_utc >= $month_start AND hour_utc < $month_end GROUP BY ALL
), rq AS (
    SELECT hour_utc, node, engine, model, fsum(requests) AS requests
      FROM stg_inference_engine_hourly WHERE hour_utc >= $month_start AND hour_utc < $month_end GROUP BY ALL
), ph AS (
    SELECT eh.engine, eh.model, fsum(prefill_kwh) FILTER (WHERE kwh > 0) AS prefill_kwh,
           fsum(prefill_kwh) FILTER (WHERE kwh > 0 AND sh.split) AS split_prefill_kwh,
           fsum(prefill_tokens) FILTER (WHERE kwh > 0 AND sh.split) AS split_prefill_tokens,
           fsum(decode_kwh) FILTER (WHERE kwh > 0) AS decode_kwh, fsum(idle_kwh) FILTER (WHERE kwh > 0) AS idle_kwh,
           fsum(prefill_tokens) FILTER (WHERE kwh > 0) AS prefill_tokens,
           fsum(decode_tokens) FILTER (WHERE kwh > 0) AS decode_tokens,
           fsum(rq.requests) FILTER (WHERE kwh > 0) AS attributed_requests,
           fsum(eh.scope2_location_g) FILTER (WHERE kwh > 0) AS scope2_location_g,
           count(*) FILTER (WHERE coalesce(kwh, 0) = 0) AS hours_without_phase_energy
      FROM eh LEFT JOIN rq USING (hour_utc, node, engine, model)
      LEFT JOIN split_hour sh USING (hour_utc, node, engine, model) GROUP BY ALL
), pr AS (
    SELECT engine, model, fsum(computed_tokens) AS computed_tokens, fsum(cached_tokens) AS cached_tokens,
           fsum(transferred_tokens) AS transferred_tokens, fsum(unsplit_tokens) AS unsplit_tokens,
           count(*) FILTER (WHERE split) AS split_node_hours, count(*) FILTER (WHERE NOT split) AS unsplit_node_hours
      FROM fact_inference_prompt_hour WHERE hour_utc >= $month_start AND hour_utc < $month_end GROUP BY ALL
), req AS (
    SELECT engine, model, fsum(requests) AS requests FROM rq GROUP BY ALL
), meth AS (
    SELECT engine, model, string_agg(DISTINCT m, ',' ORDER BY m) AS methods
      FROM (SELECT engine, model, unnest(string_split(methods, ',')) AS m FROM stg_inference_engine_hourly
             WHERE methods IS NOT NULL AND hour_utc >= $month_start AND hour_utc < $month_end)
     GROUP BY ALL
), attr AS (
    SELECT engine, model, string_agg(DISTINCT a, '; ' ORDER BY a) AS phase_attribution
      FROM (SELECT engine, model, unnest(string_split(attribution, '; ')) AS a FROM stg_inference_engine_hourly
             WHERE attribution IS NOT NULL AND hour_utc >= $month_start AND hour_utc < $month_end)
     GROUP BY ALL
), fit AS (
    SELECT engine, model,
           CASE WHEN count(*) FILTER (WHERE status = 'declined') = 0 THEN 'fitted'
                WHEN count(*) FILTER (WHERE status = 'fitted') = 0 THEN 'declined'
                ELSE 'fitted on ' || count(*) FILTER (WHERE status = 'fitted') || ' of ' || count(*) || ' nodes'
           END AS fit_status,
           min(r_squared) FILTER (WHERE status = 'fitted') AS fit_r_squared, sum(n_intervals) AS fit_intervals,
           min(reason) FILTER (WHERE status = 'declined') AS fit_reason,
           string_agg(DISTINCT cached_term, '; ' ORDER BY cached_term) FILTER (WHERE status = 'fitted')
               AS fit_cached_term
      FROM (SELECT * FROM inference_token_fit
             WHERE window_start < $month_end AND window_end > $month_start
           QUALIFY row_number() OVER (PARTITION BY source, node, cluster, site_label, engine, model
                                      ORDER BY window_end DESC, fitted_at DESC) = 1)
     GROUP BY ALL
), k AS (SELECT engine, model FROM ph UNION SELECT engine, model FROM req UNION SELECT engine, model FROM fit)
SELECT $month_start AS period_start, $month_end AS period_end, k.engine, k.model, meth.methods, ph.prefill_kwh,
       ph.decode_kwh, ph.idle_kwh, ph.prefill_tokens, ph.decode_tokens, req.requests, ph.attributed_requests,
       ph.scope2_location_g / 1000 AS scope2_location_kg,
       ph.hours_without_phase_energy, fit.fit_status, fit.fit_r_squared,
       fit.fit_intervals, fit.fit_reason, fit.fit_cached_term, ph.split_prefill_kwh, ph.split_prefill_tokens,
       pr.computed_tokens, pr.cached_tokens, pr.transferred_tokens, pr.unsplit_tokens, pr.split_node_hours,
       pr.unsplit_node_hours, attr.phase_attribution
  FROM k LEFT JOIN ph USING (engine, model) LEFT JOIN req USING (engine, model)
  LEFT JOIN meth USING (engine, model) LEFT JOIN fit USING (engine, model) LEFT JOIN pr USING (engine, model)
  LEFT JOIN attr USING (engine, model)
 ORDER BY k.engine, k.model;

-- name: data_quality
SELECT $month_start AS period_start, $month_end AS period_end, count(DISTINCT hour_utc) AS hours_with_data,
       count(DISTINCT (zone, hour_utc)) FILTER (WHERE intensity_filled) AS zone_hours_filled_intensity,
       count(DISTINCT (zone, hour_utc)) FILTER (WHERE intensity_missing) AS zone_hours_missing_intensity,
       fsum(it_kwh) FILTER (WHERE method <> 'measured') / nullif(fsum(it_kwh), 0) AS estimated_share,
       count(DISTINCT node) FILTER (WHERE site_unmapped) AS unmapped_nodes,
       count(DISTINCT site) FILTER (WHERE residual_mix_missing) AS sites_without_residual_mix,
       count(DISTINCT (site, hour_utc)) FILTER (WHERE pue_source <> 'default') AS site_hours_metered_pue
  FROM fact_device_hour WHERE hour_utc >= $month_start AND hour_utc < $month_end;

-- name: rejections
-- Readings the exporters rejected (implausible) or failed to take (timeout, read error, lost GPU, ...),
-- per site, node, collector and reason: the month's increase of wattfleet_collector_errors_total. None
-- of them is in any figure above. The site is the facts' (config globs first, else the exporter's site
-- label if it names a site; NULL when unmapped). Hourly increases are summed, then rounded to whole
-- readings (Prometheus extrapolates increase() to the hour's edges).
WITH r AS (
    SELECT node, site_label, collector, reason, fsum(readings) AS readings
      FROM stg_collector_errors_hourly WHERE hour_utc >= $month_start AND hour_utc < $month_end GROUP BY ALL
), by_glob AS (
    SELECT n.node, n.site_label, arg_min(p.site, p.ord) AS site
      FROM (SELECT DISTINCT node, site_label FROM r) n JOIN dim_node_pattern p ON n.node GLOB p.pattern
     GROUP BY ALL
)
SELECT $month_start AS period_start, $month_end AS period_end, coalesce(g.site, s.site) AS site, r.node,
       r.collector, r.reason,
       CAST(round(fsum(r.readings)) AS BIGINT) AS readings
  FROM r LEFT JOIN by_glob g ON g.node = r.node AND g.site_label IS NOT DISTINCT FROM r.site_label
  LEFT JOIN dim_site s ON s.site = r.site_label
 GROUP BY ALL HAVING round(fsum(r.readings)) > 0
 ORDER BY site NULLS LAST, r.node, r.collector, r.reason;

-- name: by_team
-- Energy, emissions and water by team: each team's workloads' shares of their nodes (fact_workload_hour via the
-- team rollup; teams from the config's `teams:` rules over the exporter's workload series). Idle, system and
-- unallocated energy, nodes without workload series and workloads no rule matches keep their own rows, so the
-- rows add up to the fleet. kWh, kgCO2e, litres.
SELECT $month_start AS period_start, $month_end AS period_end, key AS team, it_kwh, facility_kwh,
       scope2_location_g / 1000 AS scope2_location_kg,
       scope2_market_g / 1000 AS scope2_market_kg, scope3_embodied_g / 1000 AS scope3_embodied_kg,
       water_onsite_l + water_offsite_l AS water_l,
       facility_kwh / nullif(sum(facility_kwh) OVER (), 0) AS facility_share_ratio
  FROM rollup WHERE period = 'month' AND period_start = $month_start AND dimension = 'team'
 ORDER BY starts_with(key, '('), facility_kwh DESC, team;

-- name: chargeback_by_team
-- The monthly chargeback table per team (chargeback_by_team.csv and .parquet): one row per team and month with
-- the period it covers ([period_start, period_end), UTC) and every figure in the unit its name gives. Same rows
-- and keys as by_team; `workloads` counts the team's distinct (cluster, namespace, workload).
WITH w AS (
    SELECT CASE WHEN share <> 'workload' THEN '(' || share || ')' ELSE coalesce(team, '(unmapped)') END AS team,
           count(DISTINCT (cluster, namespace, workload)) FILTER (WHERE share = 'workload') AS workloads
      FROM rollup_workload WHERE period = 'month' AND period_start = $month_start GROUP BY 1
)
SELECT $month_start AS period_start, $month_end AS period_end, r.key AS team,
       coalesce(w.workloads, 0) AS workloads, r.it_kwh, r.it_kwh_measured, r.facility_kwh,
       r.scope1_g / 1000 AS scope1_kg, r.scope2_location_g / 1000 AS scope2_location_kg,
       r.scope2_market_g / 1000 AS scope2_market_kg, r.scope3_embodied_g / 1000 AS scope3_embodied_kg,
       r.scope3_upstream_g / 1000 AS scope3_upstream_kg,
       (r.scope1_g + r.scope2_location_g + r.scope3_embodied_g + r.scope3_upstream_g) / 1000 AS total_location_kg,
       (r.scope1_g + r.scope2_market_g + r.scope3_embodied_g + r.scope3_upstream_g) / 1000 AS total_market_kg,
       r.water_onsite_l, r.water_offsite_l, r.cfe_kwh, r.gpu_hours
  FROM rollup r LEFT JOIN w ON w.team = r.key
 WHERE r.period = 'month' AND r.period_start = $month_start AND r.dimension = 'team'
 ORDER BY starts_with(r.key, '('), r.key;
-- name: cfe_by_day_and_hour
-- The fleet's hourly CFE score (energy-weighted over sites) for each day and hour of the month: the
-- report's heatmap. An hour with no facility energy has no score (NULL), not 0.
SELECT hour_utc AS period_start, hour_utc + INTERVAL 1 HOUR AS period_end, CAST(hour_utc AS DATE) AS day,
       hour(hour_utc) AS hour_of_day_utc,
       fsum(cfe_kwh) / nullif(fsum(facility_kwh), 0) AS cfe_ratio, fsum(facility_kwh) AS facility_kwh
  FROM fact_device_hour WHERE hour_utc >= $month_start AND hour_utc < $month_end AND site IS NOT NULL
 GROUP BY ALL ORDER BY day, hour_of_day_utc;
