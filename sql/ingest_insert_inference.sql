-- One hour window's inference rows (energy and tokens per engine, model and phase) in a single
-- statement; parameters are parallel lists, as in ingest_insert_energy.sql.
INSERT INTO stg_inference_hourly (hour_utc, node, cluster, site_label, engine, model, phase, energy_joules, tokens,
                                  source)
SELECT $hour, unnest($node), unnest($cluster), unnest($site_label), unnest($engine), unnest($model),
       unnest($phase), unnest($energy_joules)::DOUBLE, unnest($tokens)::DOUBLE, $source;
