-- 005: what the aggregator adds to the exporter's inference series (issue 3).
--  * stg_inference_engine_hourly: finished requests per engine, model and hour, and the attribution
--    method(s) of its phase energy (the `method` label that stg_inference_hourly does not keep).
--  * inference_token_fit: one row per engine, model and fitting run of the token_fit estimator
--    (NNLS of energy = idle W x s + a x prefill tokens + b x decode tokens): the estimate and its
--    quality, or why it declined. Its hourly phase energy goes to stg_inference_hourly under the
--    source '<source>/token_fit' with tokens 0 (the tokens are staged once, from the counter).

CREATE TABLE stg_inference_engine_hourly (
    hour_utc TIMESTAMP NOT NULL, node VARCHAR NOT NULL, cluster VARCHAR, site_label VARCHAR,
    engine VARCHAR NOT NULL, model VARCHAR NOT NULL, methods VARCHAR, requests DOUBLE NOT NULL DEFAULT 0,
    source VARCHAR NOT NULL
);

CREATE TABLE inference_token_fit (
    source VARCHAR NOT NULL, window_start TIMESTAMP NOT NULL, window_end TIMESTAMP NOT NULL,
    node VARCHAR NOT NULL, cluster VARCHAR, site_label VARCHAR, engine VARCHAR NOT NULL, model VARCHAR NOT NULL,
    status VARCHAR NOT NULL, reason VARCHAR, idle_watts DOUBLE, joules_per_prefill_token DOUBLE,
    joules_per_decode_token DOUBLE, n_intervals INTEGER, r_squared DOUBLE, residual_rms_joules DOUBLE,
    condition_number DOUBLE, step_seconds DOUBLE NOT NULL, fitted_at TIMESTAMP NOT NULL
);

-- Per-token figures of a phase with no attributed energy (an engine whose token fit declined still has
-- its tokens staged) are NULL, never 0 J/token.
CREATE OR REPLACE VIEW rollup_inference_per_token AS
SELECT period, period_start, engine, model, phase, it_kwh, facility_kwh, scope2_location_g, tokens,
       CASE WHEN it_kwh > 0 THEN it_kwh * 3600000.0 / nullif(tokens, 0) END AS it_joules_per_token,
       CASE WHEN it_kwh > 0 THEN facility_kwh * 3600000.0 / nullif(tokens, 0) END AS facility_joules_per_token,
       CASE WHEN it_kwh > 0 THEN scope2_location_g / nullif(tokens / 1000.0, 0) END
           AS scope2_location_g_per_1k_tokens
  FROM rollup_inference;
