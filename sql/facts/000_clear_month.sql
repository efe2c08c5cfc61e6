-- Facts of one month, step 000: the month's facts are replaced all at once, inside the caller's transaction.
-- Month bounds: getvariable('month_start') and getvariable('month_end') (store/rebuild.py sets them).
-- The chain follows docs/accounting.md, each step once: IT -> facility (x PUE) -> Scope 2 / water / Scope 3.
-- The steps run in name order and hand on TEMP tables (_node_site, _energy, _site_hour, _site_hour_kwh);
-- the steps in slice/ then run once per slice of the month's hours (store/rebuild.py).

DELETE FROM fact_device_hour
 WHERE hour_utc >= getvariable('month_start') AND hour_utc < getvariable('month_end');
DELETE FROM fact_inference_hour
 WHERE hour_utc >= getvariable('month_start') AND hour_utc < getvariable('month_end');
DELETE FROM fact_workload_hour
 WHERE hour_utc >= getvariable('month_start') AND hour_utc < getvariable('month_end');
DELETE FROM fact_inference_prompt_hour
 WHERE hour_utc >= getvariable('month_start') AND hour_utc < getvariable('month_end');
DELETE FROM fact_instrument_month
 WHERE month >= CAST(getvariable('month_start') AS DATE) AND month < CAST(getvariable('month_end') AS DATE);
