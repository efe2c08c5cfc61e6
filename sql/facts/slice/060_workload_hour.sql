-- Facts of one month, step 060, run once per slice of the month's hours after slice/040: the device-hour
-- facts split by workload (issue 17). Slice bounds: getvariable('slice_start') and getvariable('slice_end')
-- (store/rebuild.py sets them); every row depends only on its own node and hour.
-- Each node-hour's device facts are summed per component (gpu, cpu = RAPL package, dram, overhead) and
-- split by the exporter's workload series of that node, component and hour: the workload's joules over
-- all the series' joules (share_ratio in macros.sql). The overhead line (unmetered energy and the node's
-- embodied carbon) is split by the workload's part of all the node's attributed joules. Every figure
-- (IT and facility energy, Scope 1/2/3, water, CFE) is taken from the facts as they are, so PUE, the
-- intensity and every other formula stay applied once, in 040; a node component without workload
-- series keeps its whole energy under share 'unattributed', so the rows of a node always add up to it.
-- Teams: the first rule of dim_team_rule (config `teams:`, file order) whose globs all match.

INSERT INTO fact_workload_hour BY NAME
WITH
dev AS MATERIALIZED (
    SELECT hour_utc, site, zone, cluster, node,
           CASE WHEN component = 'cpu' AND domain = 'dram' THEN 'dram' ELSE component END AS component,
           exact_sum(it_kwh) AS it_kwh,
           coalesce(exact_sum(CASE WHEN method = 'measured' THEN it_kwh END), 0) AS it_kwh_measured,
           exact_sum(facility_kwh) AS facility_kwh, exact_sum(scope1_g) AS scope1_g,
           exact_sum(scope2_location_g) AS scope2_location_g, exact_sum(scope2_market_g) AS scope2_market_g,
           exact_sum(scope3_embodied_g) AS scope3_embodied_g, exact_sum(scope3_upstream_g) AS scope3_upstream_g,
           exact_sum(water_onsite_l) AS water_onsite_l, exact_sum(water_offsite_l) AS water_offsite_l,
           exact_sum(cfe_kwh) AS cfe_kwh, count(*) FILTER (WHERE component = 'gpu') AS gpu_hours,
           coalesce(exact_sum(CASE WHEN intensity_filled THEN facility_kwh END), 0) AS filled_intensity_kwh,
           min(pue_source) AS pue_source, bool_or(intensity_filled) AS intensity_filled,
           bool_or(intensity_missing) AS intensity_missing, bool_or(site_unmapped) AS site_unmapped,
           bool_or(residual_mix_missing) AS residual_mix_missing
      FROM fact_device_hour
     WHERE hour_utc >= getvariable('slice_start') AND hour_utc < getvariable('slice_end')
     GROUP BY ALL
),
wl AS MATERIALIZED (
    SELECT hour_utc, node, min(cluster) AS cluster, component, namespace, workload, share,
           exact_sum(joules) AS joules
      FROM stg_workload_hourly
     WHERE hour_utc >= getvariable('slice_start') AND hour_utc < getvariable('slice_end')
     GROUP BY hour_utc, node, component, namespace, workload, share
),
component_total AS (SELECT hour_utc, node, component, exact_sum(joules) AS joules FROM wl GROUP BY ALL),
node_total AS (SELECT hour_utc, node, exact_sum(joules) AS joules FROM wl GROUP BY ALL),
parts AS (
    SELECT w.hour_utc, w.node, w.cluster, w.component, w.namespace, w.workload, w.share,
           share_ratio(w.joules, t.joules) AS ratio
      FROM wl w JOIN component_total t ON t.hour_utc = w.hour_utc AND t.node = w.node AND t.component = w.component
     WHERE t.joules > 0
    UNION ALL
    SELECT w.hour_utc, w.node, min(w.cluster), 'overhead', w.namespace, w.workload, w.share,
           share_ratio(exact_sum(w.joules), any_value(t.joules))
      FROM wl w JOIN node_total t ON t.hour_utc = w.hour_utc AND t.node = w.node
     WHERE t.joules > 0
     GROUP BY w.hour_utc, w.node, w.namespace, w.workload, w.share
),
team_of AS (
    SELECT k.node, k.cluster, k.namespace, k.workload, arg_min(r.team, r.ord) AS team
      FROM (SELECT DISTINCT node, cluster, namespace, workload FROM wl WHERE share = 'workload') k
      JOIN dim_team_rule r
        ON (r.namespace_glob IS NULL OR k.namespace GLOB r.namespace_glob)
       AND (r.workload_glob IS NULL OR k.workload GLOB r.workload_glob)
       AND (r.cluster_glob IS NULL OR coalesce(k.cluster, '') GLOB r.cluster_glob)
       AND (r.node_glob IS NULL OR k.node GLOB r.node_glob)
     GROUP BY ALL
)
SELECT d.hour_utc, d.site, d.zone, d.cluster, d.node, d.component,
       coalesce(p.namespace, '') AS namespace, coalesce(p.workload, '') AS workload,
       CASE WHEN p.share = 'workload' THEN t.team END AS team,
       coalesce(p.share, 'unattributed') AS share, coalesce(p.ratio, 1.0) AS share_ratio,
       workload_part(d.it_kwh, coalesce(p.ratio, 1.0)) AS it_kwh,
       workload_part(d.it_kwh_measured, coalesce(p.ratio, 1.0)) AS it_kwh_measured,
       workload_part(d.facility_kwh, coalesce(p.ratio, 1.0)) AS facility_kwh,
       workload_part(d.scope1_g, coalesce(p.ratio, 1.0)) AS scope1_g,
       workload_part(d.scope2_location_g, coalesce(p.ratio, 1.0)) AS scope2_location_g,
       workload_part(d.scope2_market_g, coalesce(p.ratio, 1.0)) AS scope2_market_g,
       workload_part(d.scope3_embodied_g, coalesce(p.ratio, 1.0)) AS scope3_embodied_g,
       workload_part(d.scope3_upstream_g, coalesce(p.ratio, 1.0)) AS scope3_upstream_g,
       workload_part(d.water_onsite_l, coalesce(p.ratio, 1.0)) AS water_onsite_l,
       workload_part(d.water_offsite_l, coalesce(p.ratio, 1.0)) AS water_offsite_l,
       workload_part(d.cfe_kwh, coalesce(p.ratio, 1.0)) AS cfe_kwh,
       workload_part(d.gpu_hours, coalesce(p.ratio, 1.0)) AS gpu_hours,
       workload_part(d.filled_intensity_kwh, coalesce(p.ratio, 1.0)) AS filled_intensity_kwh,
       d.pue_source, d.intensity_filled, d.intensity_missing, d.site_unmapped, d.residual_mix_missing
  FROM dev d
  LEFT JOIN parts p ON p.hour_utc = d.hour_utc AND p.node = d.node AND p.component = d.component
  LEFT JOIN team_of t ON p.share = 'workload' AND t.node = p.node AND t.cluster IS NOT DISTINCT FROM p.cluster
                     AND t.namespace = p.namespace AND t.workload = p.workload;
