-- One telemetry window (source, hour) is replaced, never appended to: drop its energy rows first.
DELETE FROM stg_energy_hourly WHERE source = $source AND hour_utc = $hour;
