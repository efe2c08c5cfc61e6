-- 013: energy by workload (issue 17). Who used energy now comes ONLY from the exporter's workload
-- series (wattfleet_workload_energy_joules_total), never from labels on device series: under the
-- Prometheus Operator a device series carries the scrape target's `namespace` (the exporter pod's
-- own), which credited the whole fleet to wattfleet's namespace. So the owner columns of the device
-- tables go, and workload tables come:
--  * stg_workload_hourly: hourly energy per node, component (gpu | cpu | dram) and workload
--    (namespace + owner workload) or non-workload share (unallocated | idle | system); pods summed away.
--  * dim_team_rule: the config's `teams:` mapping (globs on namespace, workload, cluster, node).
--  * fact_workload_hour: the node's device facts of each hour split by the workload shares of that
--    node and component (overhead by the node's whole share): no formula is applied again, so every
--    figure by workload adds up to the node's.
--  * rollup_workload: the same by hour, day and month per cluster, namespace, workload, team and share.

ALTER TABLE stg_energy_hourly DROP COLUMN namespace;
ALTER TABLE stg_energy_hourly DROP COLUMN team;
ALTER TABLE fact_device_hour DROP COLUMN namespace;
ALTER TABLE fact_device_hour DROP COLUMN team;

CREATE TABLE stg_workload_hourly (
    hour_utc    TIMESTAMP NOT NULL,   -- start of the hour
    node        VARCHAR   NOT NULL,
    cluster     VARCHAR,
    site_label  VARCHAR,              -- the exporter's site label; the facility config may override
    component   VARCHAR   NOT NULL,   -- gpu | cpu (RAPL package) | dram
    namespace   VARCHAR   NOT NULL,   -- '' for non-workload shares and for batch jobs
    workload    VARCHAR   NOT NULL,   -- owner: deployment/web, job/x, slurm/1234; '' if unknown
    share       VARCHAR   NOT NULL,   -- workload | unallocated | idle | system
    joules      DOUBLE    NOT NULL CHECK (joules >= 0),
    source      VARCHAR   NOT NULL    -- prometheus | embedded
);

CREATE TABLE dim_team_rule (
    ord INTEGER NOT NULL, team VARCHAR NOT NULL, namespace_glob VARCHAR, workload_glob VARCHAR,
    cluster_glob VARCHAR, node_glob VARCHAR
);

CREATE TABLE fact_workload_hour (
    hour_utc TIMESTAMP NOT NULL, site VARCHAR, zone VARCHAR, cluster VARCHAR, node VARCHAR NOT NULL,
    component VARCHAR NOT NULL,            -- gpu | cpu | dram | overhead
    namespace VARCHAR NOT NULL, workload VARCHAR NOT NULL, team VARCHAR,
    share VARCHAR NOT NULL,                -- workload | unallocated | idle | system | unattributed
    share_ratio DOUBLE NOT NULL,           -- this row's part of the node-component-hour
    it_kwh DOUBLE NOT NULL, it_kwh_measured DOUBLE, facility_kwh DOUBLE,
    scope1_g DOUBLE, scope2_location_g DOUBLE, scope2_market_g DOUBLE, scope3_embodied_g DOUBLE,
    scope3_upstream_g DOUBLE, water_onsite_l DOUBLE, water_offsite_l DOUBLE, cfe_kwh DOUBLE,
    gpu_hours DOUBLE, filled_intensity_kwh DOUBLE,
    pue_source VARCHAR, intensity_filled BOOLEAN, intensity_missing BOOLEAN, site_unmapped BOOLEAN,
    residual_mix_missing BOOLEAN
);

CREATE TABLE rollup_workload (
    period VARCHAR NOT NULL, period_start TIMESTAMP NOT NULL, cluster VARCHAR, namespace VARCHAR NOT NULL,
    workload VARCHAR NOT NULL, team VARCHAR, share VARCHAR NOT NULL,
    it_kwh DOUBLE, it_kwh_measured DOUBLE, it_kwh_estimated DOUBLE, facility_kwh DOUBLE,
    scope1_g DOUBLE, scope2_location_g DOUBLE, scope2_market_g DOUBLE, scope3_embodied_g DOUBLE,
    scope3_upstream_g DOUBLE, water_onsite_l DOUBLE, water_offsite_l DOUBLE, cfe_kwh DOUBLE,
    gpu_hours DOUBLE, filled_intensity_kwh DOUBLE
);
