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
DELETE FROM rollup_inference_prompt WHERE period_start >= getvariable('month_start')
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

-- Days from the hourly rollups, the month from the days: exact sums of sums, each from a far smaller
-- input than the last (every family below does the same, so no row is grouped for more than one period).
CREATE OR REPLACE TEMP TABLE _rollup_day AS
SELECT date_trunc('day', hour_utc) AS period_start, dimension, key,
       sum(COLUMNS(* EXCLUDE (hour_utc, dimension, key)))
  FROM _rollup_hour
 GROUP BY ALL;

-- Back to the table's units, by the unit in each column's name (gpu_hours is a count).
INSERT INTO rollup BY NAME
SELECT period, period_start, dimension, key,
       COLUMNS('_kwh') / 1e12, COLUMNS('_g$') / 1e9, COLUMNS('_l$') / 1e9, CAST(gpu_hours AS DOUBLE) AS gpu_hours
  FROM (SELECT 'hour' AS period, hour_utc AS period_start, * EXCLUDE (hour_utc) FROM _rollup_hour
        UNION ALL BY NAME
        SELECT 'day' AS period, * FROM _rollup_day
        UNION ALL BY NAME
        SELECT 'month' AS period, date_trunc('month', period_start) AS period_start, dimension, key,
               sum(COLUMNS(* EXCLUDE (period_start, dimension, key)))
          FROM _rollup_day
         GROUP BY ALL);

DROP TABLE _rollup_parts;
DROP TABLE _rollup_hour;
DROP TABLE _rollup_day;

-- Energy by workload: hourly sums of the workload facts per cluster, namespace, workload, team and share
-- (fixed units, as above; GPU-hours are shares of a GPU-hour, in millionths).
CREATE OR REPLACE TEMP TABLE _rollup_workload_hour AS
SELECT date_trunc('hour', hour_utc) AS hour_utc, cluster, namespace, workload, team, share,
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

CREATE OR REPLACE TEMP TABLE _rollup_workload_day AS
SELECT date_trunc('day', hour_utc) AS period_start, cluster, namespace, workload, team, share,
       sum(COLUMNS(* EXCLUDE (hour_utc, cluster, namespace, workload, team, share)))
  FROM _rollup_workload_hour
 GROUP BY ALL;

INSERT INTO rollup_workload BY NAME
SELECT period, period_start, cluster, namespace, workload, team, share,
       COLUMNS('_kwh') / 1e12, COLUMNS('_g$') / 1e9, COLUMNS('_l$') / 1e9, gpu_hours / 1e6 AS gpu_hours
  FROM (SELECT 'hour' AS period, hour_utc AS period_start, * EXCLUDE (hour_utc) FROM _rollup_workload_hour
        UNION ALL BY NAME
        SELECT 'day' AS period, * FROM _rollup_workload_day
        UNION ALL BY NAME
        SELECT 'month' AS period, date_trunc('month', period_start) AS period_start,
               cluster, namespace, workload, team, share,
               sum(COLUMNS(* EXCLUDE (period_start, cluster, namespace, workload, team, share)))
          FROM _rollup_workload_day
         GROUP BY ALL);

-- The 'namespace' and 'team' dimensions of the rollup, from the workload facts (keys as said at the top):
-- each hourly workload row counted once under its namespace and once under its team.
CREATE OR REPLACE TEMP TABLE _rollup_keyed_hour AS
SELECT hour_utc, CASE WHEN GROUPING(namespace_key) = 0 THEN 'namespace' ELSE 'team' END AS dimension,
       coalesce(namespace_key, team_key) AS key,
       sum(COLUMNS(* EXCLUDE (hour_utc, namespace_key, team_key)))
  FROM (SELECT hour_utc,
               CASE WHEN share <> 'workload' THEN '(' || share || ')'
                    WHEN namespace = '' THEN '(none)' ELSE namespace END AS namespace_key,
               CASE WHEN share <> 'workload' THEN '(' || share || ')'
                    ELSE coalesce(team, '(unmapped)') END AS team_key,
               COLUMNS(* EXCLUDE (hour_utc, cluster, namespace, workload, team, share))
          FROM _rollup_workload_hour)
 GROUP BY GROUPING SETS ((hour_utc, namespace_key), (hour_utc, team_key));

CREATE OR REPLACE TEMP TABLE _rollup_keyed_day AS
SELECT date_trunc('day', hour_utc) AS period_start, dimension, key,
       sum(COLUMNS(* EXCLUDE (hour_utc, dimension, key)))
  FROM _rollup_keyed_hour
 GROUP BY ALL;

INSERT INTO rollup BY NAME
SELECT period, period_start, dimension, key,
       COLUMNS('_kwh') / 1e12, COLUMNS('_g$') / 1e9, COLUMNS('_l$') / 1e9, gpu_hours / 1e6 AS gpu_hours
  FROM (SELECT 'hour' AS period, hour_utc AS period_start, * EXCLUDE (hour_utc) FROM _rollup_keyed_hour
        UNION ALL BY NAME
        SELECT 'day' AS period, * FROM _rollup_keyed_day
        UNION ALL BY NAME
        SELECT 'month' AS period, date_trunc('month', period_start) AS period_start, dimension, key,
               sum(COLUMNS(* EXCLUDE (period_start, dimension, key)))
          FROM _rollup_keyed_day
         GROUP BY ALL);

DROP TABLE _rollup_workload_hour;
DROP TABLE _rollup_workload_day;
DROP TABLE _rollup_keyed_hour;
DROP TABLE _rollup_keyed_day;

-- Inference energy and tokens by engine, model and phase.
CREATE OR REPLACE TEMP TABLE _rollup_inference_hour AS
SELECT date_trunc('hour', hour_utc) AS hour_utc, engine, model, phase,
       sum(fixed_kwh(it_kwh)) AS it_kwh, sum(fixed_kwh(facility_kwh)) AS facility_kwh,
       sum(fixed_g(scope2_location_g)) AS scope2_location_g, sum(fixed_tokens(tokens)) AS tokens
  FROM fact_inference_hour f
 WHERE f.hour_utc >= getvariable('month_start') AND f.hour_utc < getvariable('month_end')
 GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _rollup_inference_day AS
SELECT date_trunc('day', hour_utc) AS period_start, engine, model, phase,
       sum(COLUMNS(* EXCLUDE (hour_utc, engine, model, phase)))
  FROM _rollup_inference_hour
 GROUP BY ALL;

INSERT INTO rollup_inference BY NAME
SELECT period, period_start, engine, model, phase,
       COLUMNS('_kwh') / 1e12, scope2_location_g / 1e9 AS scope2_location_g, tokens / 1e6 AS tokens
  FROM (SELECT 'hour' AS period, hour_utc AS period_start, * EXCLUDE (hour_utc) FROM _rollup_inference_hour
        UNION ALL BY NAME
        SELECT 'day' AS period, * FROM _rollup_inference_day
        UNION ALL BY NAME
        SELECT 'month' AS period, date_trunc('month', period_start) AS period_start, engine, model, phase,
               sum(COLUMNS(* EXCLUDE (period_start, engine, model, phase)))
          FROM _rollup_inference_day
         GROUP BY ALL);

DROP TABLE _rollup_inference_hour;
DROP TABLE _rollup_inference_day;

-- Prompt tokens by source (issue 14), with how many node-hours the engine split them or did not.
CREATE OR REPLACE TEMP TABLE _rollup_prompt_hour AS
SELECT date_trunc('hour', hour_utc) AS hour_utc, engine, model,
       sum(fixed_tokens(computed_tokens)) AS computed_tokens, sum(fixed_tokens(cached_tokens)) AS cached_tokens,
       sum(fixed_tokens(transferred_tokens)) AS transferred_tokens,
       sum(fixed_tokens(unsplit_tokens)) AS unsplit_tokens,
       count(*) FILTER (WHERE split) AS split_node_hours, count(*) FILTER (WHERE NOT split) AS unsplit_node_hours
  FROM fact_inference_prompt_hour f
 WHERE f.hour_utc >= getvariable('month_start') AND f.hour_utc < getvariable('month_end')
 GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _rollup_prompt_day AS
SELECT date_trunc('day', hour_utc) AS period_start, engine, model,
       sum(COLUMNS(* EXCLUDE (hour_utc, engine, model)))
  FROM _rollup_prompt_hour
 GROUP BY ALL;

INSERT INTO rollup_inference_prompt BY NAME
SELECT period, period_start, engine, model, COLUMNS('_tokens$') / 1e6, COLUMNS('_node_hours$')
  FROM (SELECT 'hour' AS period, hour_utc AS period_start, * EXCLUDE (hour_utc) FROM _rollup_prompt_hour
        UNION ALL BY NAME
        SELECT 'day' AS period, * FROM _rollup_prompt_day
        UNION ALL BY NAME
        SELECT 'month' AS period, date_trunc('month', period_start) AS period_start, engine, model,
               sum(COLUMNS(* EXCLUDE (period_start, engine, model)))
          FROM _rollup_prompt_day
         GROUP BY ALL);

DROP TABLE _rollup_prompt_hour;
DROP TABLE _rollup_prompt_day;
