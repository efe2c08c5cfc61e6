-- (hour_utc, node, cluster, site_label, engine, model, phase, energy_joules, tokens = 0, source)
INSERT INTO stg_inference_hourly VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);
