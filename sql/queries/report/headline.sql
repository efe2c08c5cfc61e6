-- The monthly report's headline: the month's and the previous month's totals, from the same facts and
-- with the same sums as the GHG summary table (so the headline and the table agree to the last digit).
-- $previous_start is the first instant of the previous month, $month_end the first of the next one.

-- name: months
SELECT strftime(date_trunc('month', hour_utc), '%Y-%m') AS month,
       fsum(scope1_g + scope2_location_g + scope3_embodied_g + scope3_upstream_g) / 1e6 AS total_location_tco2e,
       fsum(scope1_g + scope2_market_g + scope3_embodied_g + scope3_upstream_g) / 1e6 AS total_market_tco2e,
       fsum(it_kwh) AS it_kwh, fsum(facility_kwh) AS facility_kwh,
       fsum(water_onsite_l + water_offsite_l) AS water_l,
       fsum(cfe_kwh) / nullif(fsum(facility_kwh), 0) AS cfe_ratio,
       count(DISTINCT hour_utc) AS hours_with_data
  FROM fact_device_hour WHERE hour_utc >= $previous_start AND hour_utc < $month_end
 GROUP BY ALL ORDER BY month;
