-- Average (reporting) intensity per zone and hour, for counterfactuals in shift.py.
-- Params: $start, $end (naive UTC TIMESTAMP).
SELECT zone, hour_utc, grams_per_kwh
  FROM stg_grid_intensity
 WHERE signal = 'average' AND hour_utc >= $start AND hour_utc < $end;
