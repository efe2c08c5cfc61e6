-- Fleet totals from the facts, for the CLI summary, logs and tests (aggregator/ingest/run.py:totals).
-- $month: the first instant of a month (TIMESTAMP), or NULL for every month. exact_sum (sql/macros.sql):
-- the same bits whatever order the rows are stored or read in.
SELECT coalesce(exact_sum(it_kwh), 0) AS it_kwh, coalesce(exact_sum(facility_kwh), 0) AS facility_kwh,
       coalesce(exact_sum(scope1_g), 0) AS scope1_g, coalesce(exact_sum(scope2_location_g), 0) AS scope2_location_g,
       coalesce(exact_sum(scope2_market_g), 0) AS scope2_market_g, coalesce(exact_sum(scope3_embodied_g), 0) AS scope3_embodied_g,
       coalesce(exact_sum(scope3_upstream_g), 0) AS scope3_upstream_g, coalesce(exact_sum(water_onsite_l), 0) AS water_onsite_l,
       coalesce(exact_sum(water_offsite_l), 0) AS water_offsite_l, coalesce(exact_sum(cfe_kwh), 0) AS cfe_kwh,
       count(*) AS rows
  FROM fact_device_hour
 WHERE $month::TIMESTAMP IS NULL OR date_trunc('month', hour_utc) = $month::TIMESTAMP
