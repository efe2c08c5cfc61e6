-- 010: grid hours whose source data make their value implausible (aggregator/grid, module implausible).
-- A source that gives the generation mix beside the intensity (EIA-930) lets each hour be checked against
-- itself; with the grid spec's `implausible: flag` (the default) such an hour is kept in stg_grid_intensity
-- and listed here with the reason, so the report's data quality can name it with the energy and emissions
-- that rest on it. Replaced with the zone's intensity rows on every grid load.

CREATE TABLE stg_grid_implausible (
    zone      VARCHAR   NOT NULL,
    hour_utc  TIMESTAMP NOT NULL,
    signal    VARCHAR   NOT NULL,
    reason    VARCHAR   NOT NULL,
    PRIMARY KEY (zone, hour_utc, signal)
);
