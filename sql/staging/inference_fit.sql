-- The writes of the inference step (aggregator/inference/fit_step.py), one transaction per run:
-- a window's requests, methods and token_fit phase energy are replaced, never appended to.

-- name: delete_engine_hourly
-- a window's requests and methods are replaced, never appended to.
DELETE FROM stg_inference_engine_hourly WHERE source = $source AND hour_utc >= $start AND hour_utc < $end;

-- name: delete_phase_energy
-- the window's token_fit phase energy (source '<source>/token_fit') is replaced.
DELETE FROM stg_inference_hourly WHERE source = $fit_source AND hour_utc >= $start AND hour_utc < $end;

-- name: delete_summaries
-- re-running the same window replaces its fit summaries (other windows stay:
-- they are the history of earlier runs; the report takes the latest per engine).
DELETE FROM inference_token_fit WHERE source = $source AND window_start = $start AND window_end = $end;

-- name: insert_engine_hourly
-- (hour_utc, node, cluster, site_label, engine, model, methods, requests, source, attribution)
INSERT INTO stg_inference_engine_hourly VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert_phase_energy
-- (hour_utc, node, cluster, site_label, engine, model, phase, energy_joules, tokens = 0, source)
INSERT INTO stg_inference_hourly VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert_summary
-- One engine and model of one fitting run: schema/005_inference_token_fit.sql names the columns, and
-- 009 adds the last two (joules_per_cached_token, cached_term).
INSERT INTO inference_token_fit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: mark_dirty
-- the months of a re-fitted window are rebuilt at the end of the run.
INSERT OR IGNORE INTO dirty_month VALUES ($month);
