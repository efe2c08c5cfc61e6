-- The monthly report's headline: the month's and the previous month's energy, water and CFE score, from
-- the same facts as the report's tables. (The headline's emissions are the inventory summary's totals,
-- report_ghg_summary, not recomputed here.) $previous_start is the first instant of the previous month,
-- $month_end the first of the next one.

-- name: months
SELECT strftime(date_trunc('month', hour_utc), '%Y-%m') AS month,
       fsum(it_kwh) AS it_kwh, fsum(facility_kwh) AS facility_kwh,
       fsum(water_onsite_l + water_offsite_l) AS water_l,
       fsum(cfe_kwh) / nullif(fsum(facility_kwh), 0) AS cfe_ratio,
       count(DISTINCT hour_utc) AS hours_with_data
  FROM fact_device_hour WHERE hour_utc >= $previous_start AND hour_utc < $month_end
 GROUP BY ALL ORDER BY month;
