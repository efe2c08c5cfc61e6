-- Fleet totals from the facts, for the CLI summary, logs and tests (aggregator/ingest/run.py:totals).
-- $month: the first instant of a month (TIMESTAMP), or NULL for every month. fsum: compensated sums.
SELECT coalesce(fsum(it_kwh), 0) AS it_kwh, coalesce(fsum(facility_kwh), 0) AS facility_kwh,
       coalesce(fsum(scope1_g), 0) AS scope1_g, coalesce(fsum(scope2_location_g), 0) AS scope2_location_g,
       coalesce(fsum(scope2_market_g), 0) AS scope2_market_g, coalesce(fsum(scope3_embodied_g), 0) AS scope3_embodied_g,
       coalesce(fsum(scope3_upstream_g), 0) AS scope3_upstream_g, coalesce(fsum(water_onsite_l), 0) AS water_onsite_l,
       coalesce(fsum(water_offsite_l), 0) AS water_offsite_l, coalesce(fsum(cfe_kwh), 0) AS cfe_kwh,
       count(*) AS rows
  FROM fact_device_hour
 WHERE $month::TIMESTAMP IS NULL OR date_trunc('month', hour_utc) = $month::TIMESTAMP
