-- The ingest writes. A telemetry window (source, hour) is replaced together with its bookkeeping,
-- watermark and dirty mark in one transaction (aggregator/ingest/writer.py); a grid load replaces
-- the zone's hours (aggregator/ingest/grid_load.py). Each block is one statement.

-- name: delete_energy
-- One telemetry window (source, hour) is replaced, never appended to: drop its energy rows first.
DELETE FROM stg_energy_hourly WHERE source = $source AND hour_utc = $hour;

-- name: delete_inference
-- One telemetry window (source, hour) is replaced, never appended to: drop its inference rows first.
DELETE FROM stg_inference_hourly WHERE source = $source AND hour_utc = $hour;

-- name: delete_collector_errors
-- One telemetry window (source, hour) is replaced, never appended to: drop its collector-error rows first.
DELETE FROM stg_collector_errors_hourly WHERE source = $source AND hour_utc = $hour;

-- name: delete_workload
-- One telemetry window (source, hour) is replaced, never appended to: drop its workload rows first.
DELETE FROM stg_workload_hourly WHERE source = $source AND hour_utc = $hour;
-- name: delete_prompt_tokens
-- One telemetry window (source, hour) is replaced, never appended to: drop its prompt-token rows first.
DELETE FROM stg_inference_prompt_hourly WHERE source = $source AND hour_utc = $hour;

-- name: insert_energy
-- One hour window's energy rows in a single statement. Parameters are parallel lists (one element
-- per row; $hour and $source are the window's): set-based, about 100x faster than a row-at-a-time
-- executemany, with no DataFrame library needed.
-- Columns BY NAME: the names are EnergyRow's fields (tests/sql/test_staging.py pins them to the table).
INSERT INTO stg_energy_hourly BY NAME
SELECT $hour AS hour_utc, unnest($node) AS node, unnest($cluster) AS cluster, unnest($site_label) AS site_label,
       unnest($device) AS device, unnest($component) AS component, unnest($domain) AS domain,
       unnest($gpu_model) AS gpu_model, unnest($method) AS method, unnest($joules)::DOUBLE AS joules,
       $source AS source;

-- name: insert_inference
-- One hour window's inference rows (energy and tokens per engine, model and phase) in a single
-- statement; parameters are parallel lists, as in insert_energy.
-- Columns BY NAME: the names are InferenceRow's fields (tests/sql/test_staging.py pins them to the table).
INSERT INTO stg_inference_hourly BY NAME
SELECT $hour AS hour_utc, unnest($node) AS node, unnest($cluster) AS cluster, unnest($site_label) AS site_label,
       unnest($engine) AS engine, unnest($model) AS model, unnest($phase) AS phase,
       unnest($energy_joules)::DOUBLE AS energy_joules, unnest($tokens)::DOUBLE AS tokens, $source AS source;

-- name: insert_collector_errors
-- One hour window's rejected and failed readings per node, collector and reason in a single statement;
-- parameters are parallel lists, as in insert_energy.
-- Columns BY NAME: the names are CollectorErrorRow's fields (tests/sql/test_staging.py pins them to the table).
INSERT INTO stg_collector_errors_hourly BY NAME
SELECT $hour AS hour_utc, unnest($node) AS node, unnest($cluster) AS cluster, unnest($site_label) AS site_label,
       unnest($collector) AS collector, unnest($reason) AS reason, unnest($readings)::DOUBLE AS readings,
       $source AS source;

-- name: insert_workload
-- One hour window's energy by workload (or non-workload share) per node and component, in a single
-- statement; parameters are parallel lists, as in insert_energy.
-- Columns BY NAME: the names are WorkloadRow's fields (tests/sql/test_staging.py pins them to the table).
INSERT INTO stg_workload_hourly BY NAME
SELECT $hour AS hour_utc, unnest($node) AS node, unnest($cluster) AS cluster, unnest($site_label) AS site_label,
       unnest($component) AS component, unnest($namespace) AS namespace, unnest($workload) AS workload,
       unnest($share) AS share, unnest($joules)::DOUBLE AS joules, $source AS source;
-- name: insert_prompt_tokens
-- One hour window's prompt tokens per engine, model and prompt source (computed, cached, transferred,
-- unsplit) in a single statement; parameters are parallel lists, as in insert_energy.
-- Columns BY NAME: the names are PromptTokenRow's fields (tests/sql/test_staging.py pins them to the table).
INSERT INTO stg_inference_prompt_hourly BY NAME
SELECT $hour AS hour_utc, unnest($node) AS node, unnest($cluster) AS cluster, unnest($site_label) AS site_label,
       unnest($engine) AS engine, unnest($model) AS model, unnest($prompt_source) AS prompt_source,
       unnest($tokens)::DOUBLE AS tokens, $source AS source;

-- name: record_window
-- The window's bookkeeping: which hour of which source was written, with how many rows, and when.
INSERT OR REPLACE INTO ingest_window VALUES ($source, $hour, $rows, now());

-- name: record_windows
-- record_window for many hours of one source at once (a page: parallel lists $hours and $rows).
INSERT OR REPLACE INTO ingest_window
SELECT $source, unnest($hours::TIMESTAMP[]), unnest($rows::BIGINT[]), now();

-- name: advance_watermark
-- The source's watermark only moves forward: re-running an old range never moves it back.
INSERT INTO ingest_watermark VALUES ($source, $watermark, now())
ON CONFLICT (source) DO UPDATE SET
    watermark_utc = greatest(ingest_watermark.watermark_utc, excluded.watermark_utc),
    updated_at = excluded.updated_at;

-- name: mark_dirty
-- The month's facts and rollups are rebuilt from staging at the end of the run (store.rebuild_dirty).
INSERT OR IGNORE INTO dirty_month VALUES ($month);

-- name: delete_intensity
-- A grid load replaces the zone's hours in [$start, $end) exactly: rows the source no longer has go too.
DELETE FROM stg_grid_intensity WHERE zone = $zone AND hour_utc >= $start AND hour_utc < $end;

-- name: delete_implausible
-- ... and so do the implausible marks of those hours (migration 010).
DELETE FROM stg_grid_implausible WHERE zone = $zone AND hour_utc >= $start AND hour_utc < $end;

-- name: insert_implausible
-- The hours of the load that the source's own data make implausible, with the reason (parallel lists).
INSERT OR REPLACE INTO stg_grid_implausible BY NAME
SELECT unnest($zone) AS zone, unnest($hour_utc) AS hour_utc, unnest($signal) AS signal, unnest($reason) AS reason;

-- name: delete_basis
DELETE FROM stg_grid_basis WHERE zone = $zone AND hour_utc >= $start AND hour_utc < $end;

-- name: insert_basis
-- What each loaded hour's intensity counts and the upstream part split off it (schema 015), one
-- statement over parallel lists like insert_intensity.
INSERT OR REPLACE INTO stg_grid_basis BY NAME
SELECT unnest($zone) AS zone, unnest($hour_utc) AS hour_utc, unnest($signal) AS signal, unnest($basis) AS basis,
       unnest($upstream_grams_per_kwh)::DOUBLE AS upstream_grams_per_kwh;

-- name: insert_intensity
-- Hourly grid intensity in a single statement; parameters are parallel lists (one element per
-- zone, hour and signal, no key twice), as in insert_energy.
-- Columns BY NAME: the names are grid_load.INTENSITY_COLUMNS (tests/sql/test_staging.py pins them to the table).
INSERT OR REPLACE INTO stg_grid_intensity BY NAME
SELECT unnest($zone) AS zone, unnest($hour_utc) AS hour_utc, unnest($signal) AS signal,
       unnest($grams_per_kwh)::DOUBLE AS grams_per_kwh, unnest($cfe_ratio)::DOUBLE AS cfe_ratio,
       unnest($source) AS source, unnest($filled) AS filled, unnest($fill_rule) AS fill_rule;

-- name: delete_energy_page
-- A page of hours [$start, $end) of one source is replaced, never appended to (aggregator/ingest/writer.py
-- write_page): drop its energy rows first.
DELETE FROM stg_energy_hourly WHERE source = $source AND hour_utc >= $start AND hour_utc < $end;

-- name: delete_inference_page
-- A page of hours of one source is replaced: drop its inference rows first.
DELETE FROM stg_inference_hourly WHERE source = $source AND hour_utc >= $start AND hour_utc < $end;

-- name: delete_collector_errors_page
-- A page of hours of one source is replaced: drop its collector-error rows first.
DELETE FROM stg_collector_errors_hourly WHERE source = $source AND hour_utc >= $start AND hour_utc < $end;

-- name: insert_energy_batch
-- One batch of energy rows (one store answer: a series shard over a page of hours), from the NumPy arrays
-- the writer registers (aggregator/ingest/batch.py Columns.point_arrays): energy_batch holds each point's
-- series_id, hour_s (Unix seconds) and value, energy_batch_series each series' label fields once, so
-- a series' strings are converted once, not once per point. The join keeps the points' order (the
-- probe side; preserve_insertion_order), so rows are stored as before. Columns BY NAME: the batch's
-- names are EnergyRow's fields (tests/sql/test_staging.py pins them).
INSERT INTO stg_energy_hourly BY NAME
SELECT make_timestamp(p.hour_s * 1000000) AS hour_utc, s.* EXCLUDE (series_id), p.* EXCLUDE (series_id, hour_s),
       $source AS source
FROM energy_batch AS p JOIN energy_batch_series AS s ON p.series_id = s.series_id;

-- name: insert_inference_batch
-- One batch of inference rows, as insert_energy_batch (registered as inference_batch and _series).
INSERT INTO stg_inference_hourly BY NAME
SELECT make_timestamp(p.hour_s * 1000000) AS hour_utc, s.* EXCLUDE (series_id), p.* EXCLUDE (series_id, hour_s),
       $source AS source
FROM inference_batch AS p JOIN inference_batch_series AS s ON p.series_id = s.series_id;

-- name: insert_collector_errors_batch
-- One batch of collector-error rows, as insert_energy_batch (registered as collector_errors_batch and _series).
INSERT INTO stg_collector_errors_hourly BY NAME
SELECT make_timestamp(p.hour_s * 1000000) AS hour_utc, s.* EXCLUDE (series_id), p.* EXCLUDE (series_id, hour_s),
       $source AS source
FROM collector_errors_batch AS p JOIN collector_errors_batch_series AS s ON p.series_id = s.series_id;

-- name: delete_prompt_tokens_page
-- A page of hours of one source is replaced: drop its prompt-token rows first.
DELETE FROM stg_inference_prompt_hourly WHERE source = $source AND hour_utc >= $start AND hour_utc < $end;

-- name: insert_prompt_tokens_batch
-- One batch of prompt-token rows, as insert_energy_batch (registered as prompt_tokens_batch and _series).
INSERT INTO stg_inference_prompt_hourly BY NAME
SELECT make_timestamp(p.hour_s * 1000000) AS hour_utc, s.* EXCLUDE (series_id), p.* EXCLUDE (series_id, hour_s),
       $source AS source
FROM prompt_tokens_batch AS p JOIN prompt_tokens_batch_series AS s ON p.series_id = s.series_id;

-- name: delete_workload_page
-- A page of hours of one source is replaced: drop its energy-by-workload rows first.
DELETE FROM stg_workload_hourly WHERE source = $source AND hour_utc >= $start AND hour_utc < $end;

-- name: insert_workload_batch
-- One batch of energy-by-workload rows, as insert_energy_batch (registered as workload_batch and _series).
-- Columns BY NAME: WorkloadRow's fields (aggregator/ingest/batch.py; tests/sql/test_staging.py pins them).
INSERT INTO stg_workload_hourly BY NAME
SELECT make_timestamp(p.hour_s * 1000000) AS hour_utc, s.* EXCLUDE (series_id), p.* EXCLUDE (series_id, hour_s),
       $source AS source
FROM workload_batch AS p JOIN workload_batch_series AS s ON p.series_id = s.series_id;
