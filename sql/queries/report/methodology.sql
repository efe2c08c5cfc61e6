-- The report's methodology section (aggregator/outputs/methodology.py): the config version, the data
-- lineage of the period [$month_start, $month_end) and the reference values the figures rest on. Read
-- from the store the figures were built from, so the section describes exactly that build.

-- name: config_version
-- The config the period's facts were built with (recorded at each month's rebuild) and the one loaded last
-- (what the report's config-read lines, Scope 1 and Category 2, use); the same hash means the same file.
-- The hash is shown in groups of 8 hex digits (spaces only, so the 64 digits can wrap on a printed page).
SELECT used_for, config_file, trim(regexp_replace(sha, '(.{8})', '\1 ', 'g')) AS config_sha256
  FROM (SELECT 'facts of ' || strftime(month, '%Y-%m') || ' built with' AS used_for, config_file,
               config_sha256 AS sha
          FROM fact_month_build WHERE month >= CAST($month_start AS DATE) AND month < CAST($month_end AS DATE)
        UNION ALL
        SELECT 'loaded last (dimensions, Scope 1, Category 2)', path, sha256 FROM dim_config)
 ORDER BY used_for;

-- name: schema_version
SELECT version AS schema_version, name AS latest_migration FROM schema_version ORDER BY version DESC LIMIT 1;

-- name: telemetry_lineage
-- Energy telemetry per source (prometheus, embedded, ...): hours, nodes and the time range it covers.
SELECT source, count(DISTINCT hour_utc) AS hours, count(DISTINCT node) AS nodes, min(hour_utc) AS first_hour_utc,
       max(hour_utc) + INTERVAL 1 HOUR AS end_utc
  FROM stg_energy_hourly WHERE hour_utc >= $month_start AND hour_utc < $month_end
 GROUP BY ALL ORDER BY source;

-- name: grid_lineage
-- Grid intensity per zone, signal and source: hours observed and filled (with the fill rules used).
SELECT zone, signal, source, count(*) FILTER (WHERE NOT filled) AS hours_observed,
       count(*) FILTER (WHERE filled) AS hours_filled,
       string_agg(DISTINCT fill_rule, ', ' ORDER BY fill_rule) AS fill_rules,
       min(hour_utc) AS first_hour_utc, max(hour_utc) + INTERVAL 1 HOUR AS end_utc
  FROM stg_grid_intensity
 WHERE hour_utc >= $month_start AND hour_utc < $month_end AND zone IN (SELECT zone FROM dim_site)
 GROUP BY ALL ORDER BY zone, signal, source;

-- name: site_reference_values
-- Per site: the configured factors every figure of the site uses (PUE default and metered periods, WUE,
-- off-site water, residual mix and its source, upstream factor), as text exactly as configured.
SELECT s.site, s.zone, CAST(s.pue_default AS VARCHAR) AS pue_default, count(m.site) AS pue_meter_readings,
       CAST(s.wue_liters_per_kwh AS VARCHAR) AS wue_liters_per_kwh,
       CAST(s.offsite_water_liters_per_kwh AS VARCHAR) AS offsite_water_liters_per_kwh,
       CAST(s.residual_mix_grams_per_kwh AS VARCHAR) AS residual_mix_grams_per_kwh, s.residual_mix_source,
       CAST(s.upstream_grams_per_kwh AS VARCHAR) AS upstream_grams_per_kwh
  FROM dim_site s LEFT JOIN dim_site_pue m ON m.site = s.site AND m.start_utc < $month_end AND m.end_utc > $month_start
 GROUP BY ALL ORDER BY s.site;

-- name: embodied_reference_values
-- Embodied carbon per unit, service life, and units acquired in the period (inventory Category 2).
-- Configured values are shown as text, exactly as given (a table's shared rounding would alter them).
SELECT e.ord + 1 AS entry, coalesce('GPU model ' || e.gpu_model_glob, 'node ' || e.node_glob) AS matches,
       CAST(e.kg_co2e AS VARCHAR) AS kg_co2e_per_unit, CAST(e.life_years AS VARCHAR) AS life_years,
       coalesce(sum(a.units) FILTER (WHERE a.acquired >= CAST($month_start AS DATE)
                                       AND a.acquired < CAST($month_end AS DATE)), 0) AS units_acquired_in_period
  FROM dim_embodied e LEFT JOIN dim_embodied_acquisition a USING (ord)
 GROUP BY ALL ORDER BY entry;

-- name: scope1_reference_values
-- Scope 1 activity data of the period and the factor applied (kg CO2e per litre, or GWP per kg).
SELECT site, kind AS scope1_source, label, CAST(quantity AS VARCHAR) AS quantity,
       CASE kind WHEN 'diesel' THEN 'L' ELSE 'kg' END AS quantity_unit, CAST(kg_co2e_per_unit AS VARCHAR) AS factor,
       CASE kind WHEN 'diesel' THEN 'kg CO2e per L' ELSE 'GWP (100-year), kg CO2e per kg' END AS factor_unit
  FROM dim_scope1 WHERE month >= CAST($month_start AS DATE) AND month < CAST($month_end AS DATE)
 ORDER BY site, kind, label;
