-- 001: staging, facility dimensions, ingest bookkeeping, facts and rollups.
-- All timestamps are UTC (naive TIMESTAMP, the connection runs with TimeZone=UTC);
-- hour_utc is the START of the hour an energy figure belongs to.

-- Telemetry: hourly energy per node, device and domain, as pulled from Prometheus or scraped.
CREATE TABLE stg_energy_hourly (
    hour_utc    TIMESTAMP NOT NULL,
    node        VARCHAR   NOT NULL,
    cluster     VARCHAR,
    site_label  VARCHAR,             -- the exporter's site label; the facility config may override
    device      VARCHAR   NOT NULL,  -- GPU index, CPU socket
    component   VARCHAR   NOT NULL,  -- gpu | cpu
    domain      VARCHAR,             -- gpu | package | dram (catalog.RAPL_IT_DOMAINS only)
    gpu_model   VARCHAR,
    method      VARCHAR   NOT NULL,  -- measured | estimated
    namespace   VARCHAR,
    team        VARCHAR,
    joules      DOUBLE    NOT NULL CHECK (joules >= 0),
    source      VARCHAR   NOT NULL   -- prometheus | embedded
);

-- Grid intensity, one row per zone, hour and signal (average | marginal).
CREATE TABLE stg_grid_intensity (
    zone           VARCHAR   NOT NULL,
    hour_utc       TIMESTAMP NOT NULL,
    signal         VARCHAR   NOT NULL,
    grams_per_kwh  DOUBLE    NOT NULL CHECK (grams_per_kwh >= 0),
    cfe_ratio      DOUBLE,
    source         VARCHAR,
    filled         BOOLEAN   NOT NULL DEFAULT false,
    fill_rule      VARCHAR,
    PRIMARY KEY (zone, hour_utc, signal)
);

-- Facility dimensions: replaced from the facility config at the start of every run.
CREATE TABLE dim_site (
    site VARCHAR PRIMARY KEY, zone VARCHAR NOT NULL, pue_default DOUBLE NOT NULL CHECK (pue_default >= 1),
    wue_liters_per_kwh DOUBLE NOT NULL, offsite_water_liters_per_kwh DOUBLE,
    residual_mix_grams_per_kwh DOUBLE, upstream_grams_per_kwh DOUBLE NOT NULL,
    overhead_ratio DOUBLE NOT NULL, overhead_watts_per_node DOUBLE NOT NULL
);
CREATE TABLE dim_site_pue (
    site VARCHAR NOT NULL, start_utc TIMESTAMP NOT NULL, end_utc TIMESTAMP NOT NULL,
    total_kwh DOUBLE NOT NULL, it_kwh DOUBLE NOT NULL, CHECK (total_kwh >= it_kwh AND it_kwh > 0)
);
CREATE TABLE dim_node_pattern (site VARCHAR NOT NULL, pattern VARCHAR NOT NULL, ord INTEGER NOT NULL);
CREATE TABLE dim_instrument (
    name VARCHAR NOT NULL, type VARCHAR NOT NULL, site VARCHAR, market VARCHAR,
    start_utc TIMESTAMP NOT NULL, end_utc TIMESTAMP NOT NULL, mwh DOUBLE NOT NULL,
    grams_per_kwh DOUBLE NOT NULL, hourly_matched BOOLEAN NOT NULL
);
CREATE TABLE dim_scope1 (
    site VARCHAR NOT NULL, kind VARCHAR NOT NULL, month DATE NOT NULL, quantity DOUBLE NOT NULL,
    kg_co2e_per_unit DOUBLE NOT NULL, label VARCHAR
);
CREATE TABLE dim_embodied (
    ord INTEGER NOT NULL, gpu_model_glob VARCHAR, node_glob VARCHAR, kg_co2e DOUBLE NOT NULL,
    life_years DOUBLE NOT NULL
);
CREATE TABLE dim_budget (owner_kind VARCHAR, owner VARCHAR, month DATE, kg_co2e DOUBLE);

-- Ingest bookkeeping: a window (one hour per source) is present exactly when its rows are.
CREATE TABLE ingest_window (
    source VARCHAR NOT NULL, hour_utc TIMESTAMP NOT NULL, rows BIGINT NOT NULL,
    ingested_at TIMESTAMP NOT NULL, PRIMARY KEY (source, hour_utc)
);
CREATE TABLE ingest_watermark (source VARCHAR PRIMARY KEY, watermark_utc TIMESTAMP NOT NULL,
                               updated_at TIMESTAMP NOT NULL);
-- Months whose staging changed since their facts were built.
CREATE TABLE dirty_month (month DATE PRIMARY KEY);

-- Facts: one row per site, zone, node, device (or node overhead line) and hour.
CREATE TABLE fact_device_hour (
    hour_utc TIMESTAMP NOT NULL, site VARCHAR, zone VARCHAR, cluster VARCHAR, node VARCHAR NOT NULL,
    device VARCHAR NOT NULL, component VARCHAR NOT NULL, domain VARCHAR, gpu_model VARCHAR,
    namespace VARCHAR, team VARCHAR, method VARCHAR NOT NULL,
    it_kwh DOUBLE NOT NULL, pue DOUBLE, pue_source VARCHAR, facility_kwh DOUBLE,
    grams_per_kwh DOUBLE, intensity_filled BOOLEAN, intensity_missing BOOLEAN, site_unmapped BOOLEAN,
    residual_mix_missing BOOLEAN,
    scope2_location_g DOUBLE, scope2_market_g DOUBLE, scope1_g DOUBLE,
    scope3_embodied_g DOUBLE, scope3_upstream_g DOUBLE,
    water_onsite_l DOUBLE, water_offsite_l DOUBLE, cfe_kwh DOUBLE
);

-- Rollups: period (hour | day | month) x dimension (fleet, site, cluster, node, gpu_model, namespace, team).
CREATE TABLE rollup (
    period VARCHAR NOT NULL, period_start TIMESTAMP NOT NULL, dimension VARCHAR NOT NULL, key VARCHAR NOT NULL,
    it_kwh DOUBLE, it_kwh_measured DOUBLE, it_kwh_estimated DOUBLE, facility_kwh DOUBLE,
    scope1_g DOUBLE, scope2_location_g DOUBLE, scope2_market_g DOUBLE, scope3_embodied_g DOUBLE,
    scope3_upstream_g DOUBLE, water_onsite_l DOUBLE, water_offsite_l DOUBLE, cfe_kwh DOUBLE,
    gpu_hours DOUBLE, filled_intensity_kwh DOUBLE
);
