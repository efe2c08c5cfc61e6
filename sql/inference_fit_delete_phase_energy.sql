-- aggregator/inference_fit: the window's token_fit phase energy (source '<source>/token_fit') is replaced.
DELETE FROM stg_inference_hourly WHERE source = $fit_source AND hour_utc >= $start AND hour_utc < $end;
