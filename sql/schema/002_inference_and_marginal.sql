-- 002: per-phase inference energy and tokens, and marginal intensity alongside average.

CREATE TABLE stg_inference_hourly (
    hour_utc TIMESTAMP NOT NULL, node VARCHAR NOT NULL, cluster VARCHAR, site_label VARCHAR,
    engine VARCHAR NOT NULL, model VARCHAR NOT NULL, phase VARCHAR NOT NULL,
    energy_joules DOUBLE NOT NULL DEFAULT 0, tokens DOUBLE NOT NULL DEFAULT 0, source VARCHAR NOT NULL
);

CREATE TABLE fact_inference_hour (
    hour_utc TIMESTAMP NOT NULL, site VARCHAR, zone VARCHAR, cluster VARCHAR, node VARCHAR NOT NULL,
    engine VARCHAR NOT NULL, model VARCHAR NOT NULL, phase VARCHAR NOT NULL,
    it_kwh DOUBLE NOT NULL, facility_kwh DOUBLE, scope2_location_g DOUBLE, tokens DOUBLE NOT NULL
);

CREATE TABLE rollup_inference (
    period VARCHAR NOT NULL, period_start TIMESTAMP NOT NULL, engine VARCHAR NOT NULL, model VARCHAR NOT NULL,
    phase VARCHAR NOT NULL, it_kwh DOUBLE, facility_kwh DOUBLE, scope2_location_g DOUBLE, tokens DOUBLE
);

-- Decision-making signal kept next to the reporting one (never used for Scope 2).
ALTER TABLE fact_device_hour ADD COLUMN marginal_grams_per_kwh DOUBLE;
