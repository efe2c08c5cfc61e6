-- aggregator/inference_fit: a window's requests and methods are replaced, never appended to.
DELETE FROM stg_inference_engine_hourly WHERE source = $source AND hour_utc >= $start AND hour_utc < $end;
