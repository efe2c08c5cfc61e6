-- The workload facts of bench/rollup_bench_facts.sql's device facts (run after it): each GPU's whole hour
-- to one job, 25 namespaces, 10 teams, so the namespace and team rollups and rollup_workload have input.
INSERT INTO fact_workload_hour BY NAME
SELECT hour_utc, site, zone, cluster, node, component,
       'ns' || (CAST(substr(node, 5) AS BIGINT) * 8 // 400 % 25) AS namespace, 'job/gpu' || device AS workload,
       'team' || (CAST(substr(node, 5) AS BIGINT) % 10) AS team, 'workload' AS share,
       1.0 AS share_ratio, it_kwh, it_kwh AS it_kwh_measured, facility_kwh, scope1_g, scope2_location_g,
       scope2_market_g, scope3_embodied_g, scope3_upstream_g, water_onsite_l, water_offsite_l, cfe_kwh,
       1.0 AS gpu_hours, CASE WHEN intensity_filled THEN facility_kwh ELSE 0 END AS filled_intensity_kwh,
       pue_source, intensity_filled, intensity_missing, site_unmapped, residual_mix_missing
  FROM fact_device_hour;

-- The dataframe engines' input: each device fact with its one workload fact's namespace and team.
CREATE OR REPLACE VIEW bench_device_facts AS
SELECT d.*, w.namespace, w.team
  FROM fact_device_hour d
  JOIN fact_workload_hour w ON w.hour_utc = d.hour_utc AND w.node = d.node AND w.workload = 'job/gpu' || d.device;
