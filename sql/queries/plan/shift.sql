-- Inputs of the time/site shift analysis (aggregator/planning/shift.py).

-- name: energy
-- Shift analysis input: hourly energy per site, namespace and team from the workload facts (shift.py).
-- Only workload rows: idle, system and unallocated energy has no namespace or team to move.
-- Params: $start, $end (naive UTC TIMESTAMP), the accounted period [start, end).
SELECT hour_utc, site, namespace, team,
       sum(it_kwh) AS it_kwh, sum(facility_kwh) AS facility_kwh, sum(scope2_location_g) AS scope2_location_g
  FROM fact_workload_hour
 WHERE hour_utc >= $start AND hour_utc < $end AND site IS NOT NULL AND share = 'workload'
 GROUP BY ALL
 ORDER BY hour_utc, site, namespace, team;

-- name: zone_intensity
-- Average (reporting) intensity per zone and hour, for counterfactuals in shift.py.
-- Params: $start, $end (naive UTC TIMESTAMP).
SELECT zone, hour_utc, grams_per_kwh
  FROM stg_grid_intensity
 WHERE signal = 'average' AND hour_utc >= $start AND hour_utc < $end;
