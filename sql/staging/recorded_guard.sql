-- What pre-aggregation's completeness guard compares the recorded series with (aggregator/ingest/recorded_guard.py).

-- name: stored_rows
-- Rows already stored per hour of [$start, $end) of one source, per kind of recorded series: device
-- energy per component (one row per GPU or CPU domain) and energy by workload (one row per series).
SELECT hour_utc, component AS kind, count(*) AS rows
  FROM stg_energy_hourly WHERE source = $source AND hour_utc >= $start AND hour_utc < $end GROUP BY ALL
UNION ALL
SELECT hour_utc, 'workload' AS kind, count(*) AS rows
  FROM stg_workload_hourly WHERE source = $source AND hour_utc >= $start AND hour_utc < $end GROUP BY ALL;

-- Read from recorded series, a page's rows go in first under a pending source name ($pending); the guard
-- then promotes the hours it found complete to the real source (after deleting their old rows) and
-- drops the rest, all in the page's one transaction (aggregator/ingest/writer.py write_page).

-- name: promote_energy
UPDATE stg_energy_hourly SET source = $source WHERE source = $pending AND hour_utc >= $start AND hour_utc < $end;

-- name: promote_inference
UPDATE stg_inference_hourly SET source = $source
 WHERE source = $pending AND hour_utc >= $start AND hour_utc < $end;

-- name: promote_collector_errors
UPDATE stg_collector_errors_hourly SET source = $source
 WHERE source = $pending AND hour_utc >= $start AND hour_utc < $end;

-- name: promote_prompt_tokens
UPDATE stg_inference_prompt_hourly SET source = $source
 WHERE source = $pending AND hour_utc >= $start AND hour_utc < $end;

-- name: promote_workload
UPDATE stg_workload_hourly SET source = $source WHERE source = $pending AND hour_utc >= $start AND hour_utc < $end;

-- name: record_kept
-- An hour the guard kept as stored (sql/schema/016_ingest_kept_hour.sql), in the page's transaction: the first
-- keep inserts the row, each later one counts it again (keeps + 1) with its own reason, counts and time.
INSERT INTO ingest_kept_hour VALUES ($source, $hour, $mode, $reason, $read_gpu, $read_cpu, $read_workload,
                                     $stored_gpu, $stored_cpu, $stored_workload, 1, now(), now())
ON CONFLICT (source, hour_utc, mode) DO UPDATE SET
    reason = excluded.reason,
    read_gpu_rows = excluded.read_gpu_rows, read_cpu_rows = excluded.read_cpu_rows,
    read_workload_rows = excluded.read_workload_rows,
    stored_gpu_rows = excluded.stored_gpu_rows, stored_cpu_rows = excluded.stored_cpu_rows,
    stored_workload_rows = excluded.stored_workload_rows,
    keeps = ingest_kept_hour.keeps + 1,
    last_kept_at = excluded.last_kept_at;
