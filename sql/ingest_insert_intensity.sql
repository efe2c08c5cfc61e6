-- Hourly grid intensity in a single statement; parameters are parallel lists (one element per
-- zone, hour and signal, no key twice), as in ingest_insert_energy.sql.
INSERT OR REPLACE INTO stg_grid_intensity (zone, hour_utc, signal, grams_per_kwh, cfe_ratio, source, filled, fill_rule)
SELECT unnest($zone), unnest($hour_utc), unnest($signal), unnest($grams_per_kwh)::DOUBLE, unnest($cfe_ratio)::DOUBLE,
       unnest($source), unnest($filled), unnest($fill_rule);
