-- What `wattfleet serve` publishes from the database (aggregator/outputs/serve.py:render).

-- name: grid_intensity
-- The newest hour of each zone and signal up to $now (naive UTC), with its source.
SELECT zone, signal, arg_max(grams_per_kwh, hour_utc), arg_max(source, hour_utc), max(hour_utc)
  FROM stg_grid_intensity WHERE hour_utc <= $now GROUP BY zone, signal ORDER BY zone, signal;

-- name: latest_month
SELECT max(period_start) FROM rollup WHERE period = 'month';

-- name: site_month
-- Month-to-date figures per site of the month starting $period_start.
SELECT key, it_kwh, facility_kwh, scope1_g, scope2_location_g, scope2_market_g,
       scope3_embodied_g, scope3_upstream_g, water_onsite_l, water_offsite_l, cfe_kwh
  FROM rollup WHERE period = 'month' AND period_start = $period_start AND dimension = 'site' ORDER BY key;

-- name: watermark
SELECT max(watermark_utc) FROM ingest_watermark;

-- name: kept_hours
-- Hours the ingest guard kept as stored (sql/schema/016_ingest_kept_hour.sql), per source and mode: how many
-- times in all (a counter: a row's keeps only grow) and when last (naive UTC).
SELECT source, mode, sum(keeps), max(last_kept_at) FROM ingest_kept_hour GROUP BY ALL ORDER BY ALL;
