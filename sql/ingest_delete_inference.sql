-- One telemetry window (source, hour) is replaced, never appended to: drop its inference rows first.
DELETE FROM stg_inference_hourly WHERE source = $source AND hour_utc = $hour;
