-- 006: readings the exporters rejected or failed to take, per node, collector, reason and hour.
-- The hourly increase of wattfleet_collector_errors_total (reasons such as implausible_reading,
-- timeout, read_error, gpu_lost, write_failed; any reason a collector names is kept as it is).
-- These readings were never summed into any energy figure: the table only lets the monthly report
-- count them. A window (source, hour) replaces its rows together with its energy, in one transaction.

CREATE TABLE stg_collector_errors_hourly (
    hour_utc    TIMESTAMP NOT NULL,   -- start of the hour
    node        VARCHAR   NOT NULL,
    cluster     VARCHAR,
    site_label  VARCHAR,              -- the exporter's site label; the facility config may override
    collector   VARCHAR   NOT NULL,   -- nvml | rapl | host | inference | state_file | ...
    reason      VARCHAR   NOT NULL,
    readings    DOUBLE    NOT NULL CHECK (readings >= 0),  -- the counter's increase over the hour
    source      VARCHAR   NOT NULL    -- prometheus | embedded
);
