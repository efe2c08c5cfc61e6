-- 009: prompt tokens by source (issue 14). Engines split prompt tokens into computed (a forward pass ran),
-- cached (prefix-cache hit) and transferred (KV from elsewhere); `unsplit` counts an engine that does not
-- say (wattfleet_inference_prompt_tokens_total{source}). The `prefill` phase's tokens in
-- stg_inference_hourly are the computed ones where the engine splits them, all prompt tokens where not.
--  * stg_inference_prompt_hourly: hourly increase per engine, model and prompt source, as scraped.
--  * fact_inference_prompt_hour: one row per node, engine, model and hour, sources as columns; `split` says
--    whether the engine exposed the split in that hour (an unsplit hour has only unsplit_tokens).
--  * rollup_inference_prompt: the same per period, with how many node-hours were split or not.
--  * inference_token_fit gains the fit's cached-token term (J per cached token, or why it was left out).

CREATE TABLE stg_inference_prompt_hourly (
    hour_utc TIMESTAMP NOT NULL, node VARCHAR NOT NULL, cluster VARCHAR, site_label VARCHAR,
    engine VARCHAR NOT NULL, model VARCHAR NOT NULL, prompt_source VARCHAR NOT NULL,
    tokens DOUBLE NOT NULL DEFAULT 0, source VARCHAR NOT NULL
);

CREATE TABLE fact_inference_prompt_hour (
    hour_utc TIMESTAMP NOT NULL, site VARCHAR, cluster VARCHAR, node VARCHAR NOT NULL,
    engine VARCHAR NOT NULL, model VARCHAR NOT NULL,
    computed_tokens DOUBLE NOT NULL, cached_tokens DOUBLE NOT NULL, transferred_tokens DOUBLE NOT NULL,
    unsplit_tokens DOUBLE NOT NULL, split BOOLEAN NOT NULL
);

CREATE TABLE rollup_inference_prompt (
    period VARCHAR NOT NULL, period_start TIMESTAMP NOT NULL, engine VARCHAR NOT NULL, model VARCHAR NOT NULL,
    computed_tokens DOUBLE, cached_tokens DOUBLE, transferred_tokens DOUBLE, unsplit_tokens DOUBLE,
    split_node_hours BIGINT, unsplit_node_hours BIGINT
);

ALTER TABLE inference_token_fit ADD COLUMN joules_per_cached_token DOUBLE;
ALTER TABLE inference_token_fit ADD COLUMN cached_term VARCHAR;
