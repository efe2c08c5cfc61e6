-- 016: hours a run's re-read guard kept as stored instead of replacing them (aggregator/ingest/recorded_guard.py):
-- a --pre-aggregated hour whose recorded series are incomplete, or a raw lookback re-read that would shrink
-- the stored hour (the store answered less than was stored). Written in the page's own transaction, so the
-- event outlives the batch run that saw it; `wattfleet serve` publishes it
-- (wattfleet_aggregator_kept_windows_total, wattfleet_aggregator_last_kept_timestamp_seconds) for the alert
-- WattfleetAggregatorKeptStoredHours.
-- One row per source, hour and mode (bounded by the hours stored): each further run that keeps the same
-- hour adds 1 to `keeps` and updates the rest, so sum(keeps) only grows, like a counter.

CREATE TABLE ingest_kept_hour (
    source           VARCHAR   NOT NULL,
    hour_utc         TIMESTAMP NOT NULL,   -- start of the hour kept
    mode             VARCHAR   NOT NULL CHECK (mode IN ('raw', 'pre-aggregated')),
    reason           VARCHAR   NOT NULL,   -- recorded_guard.reason of the last keep
    read_gpu_rows    INTEGER   NOT NULL,   -- rows per kind the last keep read ...
    read_cpu_rows    INTEGER   NOT NULL,
    read_workload_rows INTEGER NOT NULL,
    stored_gpu_rows  INTEGER   NOT NULL,   -- ... and found stored
    stored_cpu_rows  INTEGER   NOT NULL,
    stored_workload_rows INTEGER NOT NULL,
    keeps            BIGINT    NOT NULL CHECK (keeps >= 1),  -- runs that kept this hour
    first_kept_at    TIMESTAMP NOT NULL,   -- UTC
    last_kept_at     TIMESTAMP NOT NULL,   -- UTC
    PRIMARY KEY (source, hour_utc, mode)
);
