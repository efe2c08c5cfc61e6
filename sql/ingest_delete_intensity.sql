-- A grid load replaces the zone's hours in [$start, $end) exactly: rows the source no longer has go too.
DELETE FROM stg_grid_intensity WHERE zone = $zone AND hour_utc >= $start AND hour_utc < $end;
