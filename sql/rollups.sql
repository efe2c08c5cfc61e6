-- Rebuild the rollups of one month from its facts (same build_window as facts.sql).
-- Dimension 'fleet' is the grand total; keys absent from the telemetry (no team label) are left out.

DELETE FROM rollup WHERE period_start >= (SELECT month_start FROM build_window)
                     AND period_start < (SELECT month_end FROM build_window);
DELETE FROM rollup_inference WHERE period_start >= (SELECT month_start FROM build_window)
                               AND period_start < (SELECT month_end FROM build_window);

-- Hourly rollups straight from the facts: one scan, GROUPING SETS for every dimension.
-- Plain sum() here (the hot path, twice as fast as fsum): store.py runs rebuilds on one thread, so the
-- order of additions, and therefore every bit of the result, is the same on every run.
INSERT INTO rollup BY NAME
SELECT 'hour' AS period, hour_utc AS period_start,
       CASE WHEN GROUPING(site) = 0 THEN 'site' WHEN GROUPING(cluster) = 0 THEN 'cluster'
            WHEN GROUPING(node) = 0 THEN 'node' WHEN GROUPING(gpu_model) = 0 THEN 'gpu_model'
            WHEN GROUPING(namespace) = 0 THEN 'namespace' WHEN GROUPING(team) = 0 THEN 'team'
            ELSE 'fleet' END AS dimension,
       coalesce(site, cluster, node, gpu_model, namespace, team, 'all') AS key,
       sum(it_kwh) AS it_kwh,
       sum(it_kwh) FILTER (WHERE method = 'measured') AS it_kwh_measured,
       sum(it_kwh) FILTER (WHERE method <> 'measured') AS it_kwh_estimated,
       sum(facility_kwh) AS facility_kwh,
       sum(scope1_g) AS scope1_g, sum(scope2_location_g) AS scope2_location_g,
       sum(scope2_market_g) AS scope2_market_g, sum(scope3_embodied_g) AS scope3_embodied_g,
       sum(scope3_upstream_g) AS scope3_upstream_g, sum(water_onsite_l) AS water_onsite_l,
       sum(water_offsite_l) AS water_offsite_l, sum(cfe_kwh) AS cfe_kwh,
       count(*) FILTER (WHERE component = 'gpu') AS gpu_hours,
       sum(facility_kwh) FILTER (WHERE intensity_filled) AS filled_intensity_kwh
  FROM fact_device_hour f, build_window w
 WHERE f.hour_utc >= w.month_start AND f.hour_utc < w.month_end
 GROUP BY GROUPING SETS ((hour_utc), (hour_utc, site), (hour_utc, cluster), (hour_utc, node), (hour_utc, gpu_model),
                         (hour_utc, namespace), (hour_utc, team))
HAVING dimension = 'fleet' OR key <> 'all';

-- Days and the month from the hourly rollups: sums of sums, a far smaller input than the facts.
INSERT INTO rollup BY NAME
SELECT p.period, date_trunc(p.period, r.period_start) AS period_start, r.dimension, r.key,
       fsum(it_kwh) AS it_kwh, fsum(it_kwh_measured) AS it_kwh_measured,
       fsum(it_kwh_estimated) AS it_kwh_estimated, fsum(facility_kwh) AS facility_kwh,
       fsum(scope1_g) AS scope1_g, fsum(scope2_location_g) AS scope2_location_g,
       fsum(scope2_market_g) AS scope2_market_g, fsum(scope3_embodied_g) AS scope3_embodied_g,
       fsum(scope3_upstream_g) AS scope3_upstream_g, fsum(water_onsite_l) AS water_onsite_l,
       fsum(water_offsite_l) AS water_offsite_l, fsum(cfe_kwh) AS cfe_kwh, fsum(gpu_hours) AS gpu_hours,
       fsum(filled_intensity_kwh) AS filled_intensity_kwh
  FROM rollup r CROSS JOIN (VALUES ('day'), ('month')) p(period), build_window w
 WHERE r.period = 'hour' AND r.period_start >= w.month_start AND r.period_start < w.month_end
 GROUP BY ALL;

INSERT INTO rollup_inference BY NAME
SELECT p.period, date_trunc(p.period, f.hour_utc) AS period_start, f.engine, f.model, f.phase,
       fsum(f.it_kwh) AS it_kwh, fsum(f.facility_kwh) AS facility_kwh,
       fsum(f.scope2_location_g) AS scope2_location_g, fsum(f.tokens) AS tokens
  FROM fact_inference_hour f CROSS JOIN (VALUES ('hour'), ('day'), ('month')) p(period), build_window w
 WHERE f.hour_utc >= w.month_start AND f.hour_utc < w.month_end
 GROUP BY ALL;
