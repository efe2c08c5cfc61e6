-- Rebuild the rollups of one month from its facts (month bounds: getvariable('month_start'), getvariable('month_end'),
-- as in facts/).
-- Dimension 'fleet' is the grand total. Dimensions 'namespace' and 'team' come from the workload facts
-- (fact_workload_hour, only ever from the exporter's workload series): workload rows under their
-- namespace and team ('(none)' for a batch job without a namespace, '(unmapped)' for a workload no team
-- rule matches), every other share under its own key in parentheses ('(idle)', '(system)',
-- '(unallocated)', '(unattributed)'), so the keys of each dimension add up to the fleet.
--
-- Exact sums, any number of threads: re-running a month must give bit-identical totals, and a
-- parallel float sum adds in whatever order threads pick up row groups. So every figure is summed as
-- a 64-bit integer count of a fixed unit and divided once at the end: integer addition is exact and
-- associative, so every thread count and every order gives the same bits, and the day and month
-- rollups summed from the hourly ones equal sums of the facts exactly. Units: energy in pico-kWh
-- (1e-12 kWh = 3.6 uJ, below the millijoule resolution of NVML and RAPL), emissions in nanograms,
-- water in nanolitres, tokens in millionths. One fact row can hold at most 9.2e6 kWh, 9.2e9 g,
-- 9.2e9 L or 9.2e12 tokens (the BIGINT range); beyond that the cast fails, nothing wraps.
CREATE OR REPLACE TEMP MACRO fixed_kwh(x) AS CAST(x * 1e12 AS BIGINT);
CREATE OR REPLACE TEMP MACRO fixed_g(x) AS CAST(x * 1e9 AS BIGINT);
CREATE OR REPLACE TEMP MACRO fixed_l(x) AS CAST(x * 1e9 AS BIGINT);
CREATE OR REPLACE TEMP MACRO fixed_tokens(x) AS CAST(x * 1e6 AS BIGINT);
CREATE OR REPLACE TEMP MACRO fixed_hours(x) AS CAST(x * 1e6 AS BIGINT);

DELETE FROM rollup WHERE period_start >= getvariable('month_start')
                     AND period_start < getvariable('month_end');
DELETE FROM rollup_inference WHERE period_start >= getvariable('month_start')
                               AND period_start < getvariable('month_end');
DELETE FROM rollup_workload WHERE period_start >= getvariable('month_start')
                              AND period_start < getvariable('month_end');

-- One scan of the facts, two groupings per row: by node (the large dimension), and by every small
-- dimension together (a few rows per hour: sites x clusters x GPU models).
CREATE OR REPLACE TEMP TABLE _rollup_parts AS
SELECT hour_utc, GROUPING(node) = 0 AS by_node, node, site, cluster, gpu_model,
       sum(fixed_kwh(it_kwh)) AS it_kwh,
       sum(fixed_kwh(it_kwh)) FILTER (WHERE method = 'measured') AS it_kwh_measured,
       sum(fixed_kwh(it_kwh)) FILTER (WHERE method <> 'measured') AS it_kwh_estimated,
       sum(fixed_kwh(facility_kwh)) AS facility_kwh,
       sum(fixed_g(scope1_g)) AS scope1_g, sum(fixed_g(scope2_location_g)) AS scope2_location_g,
       sum(fixed_g(scope2_market_g)) AS scope2_market_g, sum(fixed_g(scope3_embodied_g)) AS scope3_embodied_g,
       sum(fixed_g(scope3_upstream_g)) AS scope3_upstream_g, sum(fixed_l(water_onsite_l)) AS water_onsite_l,
       sum(fixed_l(water_offsite_l)) AS water_offsite_l, sum(fixed_kwh(cfe_kwh)) AS cfe_kwh,
       count(*) FILTER (WHERE component = 'gpu') AS gpu_hours,
       sum(fixed_kwh(facility_kwh)) FILTER (WHERE intensity_filled) AS filled_intensity_kwh
  FROM fact_device_hour f
 WHERE f.hour_utc >= getvariable('month_start') AND f.hour_utc < getvariable('month_end')
 GROUP BY GROUPING SETS ((hour_utc, node), (hour_utc, site, cluster, gpu_model));

-- Hourly rollups (still in fixed units): nodes as they are, the small dimensions and the fleet
-- summed from their combinations.
CREATE OR REPLACE TEMP TABLE _rollup_hour AS
SELECT hour_utc, 'node' AS dimension, node AS key,
       COLUMNS(* EXCLUDE (hour_utc, by_node, node, site, cluster, gpu_model))
  FROM _rollup_parts WHERE by_node AND node IS NOT NULL
UNION ALL BY NAME
SELECT hour_utc,
       CASE WHEN GROUPING(site) = 0 THEN 'site' WHEN GROUPING(cluster) = 0 THEN 'cluster'
            WHEN GROUPING(gpu_model) = 0 THEN 'gpu_model' ELSE 'fleet' END AS dimension,
       coalesce(site, cluster, gpu_model, 'all') AS key,
       sum(COLUMNS(* EXCLUDE (hour_utc, by_node, node, site, cluster, gpu_model)))
  FROM _rollup_parts WHERE NOT by_node
 GROUP BY GROUPING SETS ((hour_utc), (hour_utc, site), (hour_utc, cluster), (hour_utc, gpu_model))
HAVING dimension = 'fleet' OR key <> 'all';

-- Back to the table's units, by the unit in each column's name (gpu_hours is a count).
INSERT INTO rollup BY NAME
SELECT 'hour' AS period, hour_utc AS period_start, dimension, key,
       COLUMNS('_kwh') / 1e12, COLUMNS('_g$') / 1e9, COLUMNS('_l$') / 1e9, CAST(gpu_hours AS DOUBLE) AS gpu_hours
  FROM _rollup_hour;

-- Days and the month from the hourly rollups: exact sums of sums, a far smaller input than the facts.
INSERT INTO rollup BY NAME
SELECT p.period, date_trunc(p.period, h.hour_utc) AS period_start, h.dimension, h.key,
       sum(COLUMNS('_kwh')) / 1e12, sum(COLUMNS('_g$')) / 1e9, sum(COLUMNS('_l$')) / 1e9,
       CAST(sum(gpu_hours) AS DOUBLE) AS gpu_hours
  FROM _rollup_hour h CROSS JOIN (VALUES ('day'), ('month')) p(period)
 GROUP BY ALL;

DROP TABLE _rollup_parts;
DROP TABLE _rollup_hour;

-- Energy by workload: hourly sums of the workload facts per cluster, namespace, workload, team and share
-- (fixed units, as above; GPU-hours are shares of a GPU-hour, in millionths).
CREATE OR REPLACE TEMP TABLE _rollup_workload_hour AS
SELECT hour_utc, cluster, namespace, workload, team, share,
       sum(fixed_kwh(it_kwh)) AS it_kwh, sum(fixed_kwh(it_kwh_measured)) AS it_kwh_measured,
       sum(fixed_kwh(it_kwh)) - sum(fixed_kwh(it_kwh_measured)) AS it_kwh_estimated,
       sum(fixed_kwh(facility_kwh)) AS facility_kwh,
       sum(fixed_g(scope1_g)) AS scope1_g, sum(fixed_g(scope2_location_g)) AS scope2_location_g,
       sum(fixed_g(scope2_market_g)) AS scope2_market_g, sum(fixed_g(scope3_embodied_g)) AS scope3_embodied_g,
       sum(fixed_g(scope3_upstream_g)) AS scope3_upstream_g, sum(fixed_l(water_onsite_l)) AS water_onsite_l,
       sum(fixed_l(water_offsite_l)) AS water_offsite_l, sum(fixed_kwh(cfe_kwh)) AS cfe_kwh,
       sum(fixed_hours(gpu_hours)) AS gpu_hours, sum(fixed_kwh(filled_intensity_kwh)) AS filled_intensity_kwh
  FROM fact_workload_hour f
 WHERE f.hour_utc >= getvariable('month_start') AND f.hour_utc < getvariable('month_end')
 GROUP BY ALL;

INSERT INTO rollup_workload BY NAME
SELECT p.period, date_trunc(p.period, h.hour_utc) AS period_start, h.cluster, h.namespace, h.workload, h.team,
       h.share, sum(COLUMNS('_kwh')) / 1e12, sum(COLUMNS('_g$')) / 1e9, sum(COLUMNS('_l$')) / 1e9,
       sum(gpu_hours) / 1e6 AS gpu_hours
  FROM _rollup_workload_hour h CROSS JOIN (VALUES ('hour'), ('day'), ('month')) p(period)
 GROUP BY ALL;

-- The 'namespace' and 'team' dimensions of the rollup, from the workload facts (keys as said at the top).
INSERT INTO rollup BY NAME
WITH keyed AS (
    SELECT hour_utc, d.dimension,
           CASE WHEN share <> 'workload' THEN '(' || share || ')'
                WHEN d.dimension = 'namespace' THEN CASE WHEN namespace = '' THEN '(none)' ELSE namespace END
                ELSE coalesce(team, '(unmapped)') END AS key,
           COLUMNS(* EXCLUDE (hour_utc, cluster, namespace, workload, team, share, dimension))
      FROM _rollup_workload_hour CROSS JOIN (VALUES ('namespace'), ('team')) d(dimension)
)
SELECT p.period, date_trunc(p.period, k.hour_utc) AS period_start, k.dimension, k.key,
       sum(COLUMNS('_kwh')) / 1e12, sum(COLUMNS('_g$')) / 1e9, sum(COLUMNS('_l$')) / 1e9,
       sum(gpu_hours) / 1e6 AS gpu_hours
  FROM keyed k CROSS JOIN (VALUES ('hour'), ('day'), ('month')) p(period)
 GROUP BY ALL;

DROP TABLE _rollup_workload_hour;

INSERT INTO rollup_inference BY NAME
SELECT p.period, date_trunc(p.period, f.hour_utc) AS period_start, f.engine, f.model, f.phase,
       sum(fixed_kwh(f.it_kwh)) / 1e12 AS it_kwh, sum(fixed_kwh(f.facility_kwh)) / 1e12 AS facility_kwh,
       sum(fixed_g(f.scope2_location_g)) / 1e9 AS scope2_location_g, sum(fixed_tokens(f.tokens)) / 1e6 AS tokens
  FROM fact_inference_hour f CROSS JOIN (VALUES ('hour'), ('day'), ('month')) p(period)
 WHERE f.hour_utc >= getvariable('month_start') AND f.hour_utc < getvariable('month_end')
 GROUP BY ALL;

-- Prompt tokens by source (issue 14), with how many node-hours the engine split them or did not.
DELETE FROM rollup_inference_prompt WHERE period_start >= getvariable('month_start')
                                      AND period_start < getvariable('month_end');
INSERT INTO rollup_inference_prompt BY NAME
SELECT p.period, date_trunc(p.period, f.hour_utc) AS period_start, f.engine, f.model,
       sum(fixed_tokens(f.computed_tokens)) / 1e6 AS computed_tokens,
       sum(fixed_tokens(f.cached_tokens)) / 1e6 AS cached_tokens,
       sum(fixed_tokens(f.transferred_tokens)) / 1e6 AS transferred_tokens,
       sum(fixed_tokens(f.unsplit_tokens)) / 1e6 AS unsplit_tokens,
       count(*) FILTER (WHERE f.split) AS split_node_hours, count(*) FILTER (WHERE NOT f.split) AS unsplit_node_hours
  FROM fact_inference_prompt_hour f CROSS JOIN (VALUES ('hour'), ('day'), ('month')) p(period)
 WHERE f.hour_utc >= getvariable('month_start') AND f.hour_utc < getvariable('month_end')
 GROUP BY ALL;
