-- What pre-aggregation's completeness guard compares the recorded series with (aggregator/ingest/recorded_guard.py).

-- name: stored_rows
-- Rows already stored per hour of [$start, $end) of one source, per kind of recorded series: device
-- energy per component (one row per GPU or CPU domain) and energy by workload (one row per series).
SELECT hour_utc, component AS kind, count(*) AS rows
  FROM stg_energy_hourly WHERE source = $source AND hour_utc >= $start AND hour_utc < $end GROUP BY ALL
UNION ALL
SELECT hour_utc, 'workload' AS kind, count(*) AS rows
  FROM stg_workload_hourly WHERE source = $source AND hour_utc >= $start AND hour_utc < $end GROUP BY ALL;
