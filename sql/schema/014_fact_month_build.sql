-- 014: which config built a month's facts. The dimensions are replaced from the config on every run, but
-- a month's facts are rebuilt only when its staging changed, so the config a report reads (dim_config)
-- may be newer than the one its facts were built with; the report's methodology shows both.

CREATE TABLE fact_month_build (
    month DATE PRIMARY KEY, config_file VARCHAR, config_sha256 VARCHAR, schema_version INTEGER,
    built_at TIMESTAMP NOT NULL
);
