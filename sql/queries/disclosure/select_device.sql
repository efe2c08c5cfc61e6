-- Disclosure of a training run: the selected device-hour facts, once, into a temp table that every
-- other queries/disclosure/ files read (so each figure and each row count describes the same rows).
-- Params: $start, $end (naive UTC, [start, end)); label globs $namespace, $team, $cluster, $node,
-- $gpu_model, $site (NULL = any value, including none).
-- A run selected by namespace or team is its workload rows (fact_workload_hour: the node's facts split
-- by the exporter's workload series; the only source of namespace and team): there no GPU model is
-- known, so disclosure.py refuses $gpu_model with them. Without either, the device facts.
CREATE OR REPLACE TEMP TABLE _disclosure_rows AS
SELECT hour_utc, site, zone, node, it_kwh,
       CASE WHEN method = 'measured' THEN it_kwh ELSE 0 END AS it_kwh_measured,
       facility_kwh, pue_source, scope1_g, scope2_location_g, scope2_market_g, scope3_embodied_g,
       scope3_upstream_g, water_onsite_l, water_offsite_l, cfe_kwh,
       CASE WHEN component = 'gpu' THEN 1.0 ELSE 0.0 END AS gpu_hours,
       0.0 AS tokens, intensity_filled, intensity_missing, site_unmapped, residual_mix_missing,
       false AS unallocated
  FROM fact_device_hour
 WHERE hour_utc >= $start AND hour_utc < $end
   AND $namespace IS NULL AND $team IS NULL
   AND ($cluster IS NULL OR cluster GLOB $cluster)
   AND ($node IS NULL OR node GLOB $node)
   AND ($gpu_model IS NULL OR gpu_model GLOB $gpu_model)
   AND ($site IS NULL OR site GLOB $site)
UNION ALL
SELECT hour_utc, site, zone, node, it_kwh, it_kwh_measured,
       facility_kwh, pue_source, scope1_g, scope2_location_g, scope2_market_g, scope3_embodied_g,
       scope3_upstream_g, water_onsite_l, water_offsite_l, cfe_kwh, gpu_hours,
       0.0 AS tokens, intensity_filled, intensity_missing, site_unmapped, residual_mix_missing,
       false AS unallocated
  FROM fact_workload_hour
 WHERE hour_utc >= $start AND hour_utc < $end AND share = 'workload'
   AND ($namespace IS NOT NULL OR $team IS NOT NULL) AND $gpu_model IS NULL
   AND ($namespace IS NULL OR namespace GLOB $namespace)
   AND ($team IS NULL OR team GLOB $team)
   AND ($cluster IS NULL OR cluster GLOB $cluster)
   AND ($node IS NULL OR node GLOB $node)
   AND ($site IS NULL OR site GLOB $site);
