-- (hour_utc, node, cluster, site_label, engine, model, methods, requests, source)
INSERT INTO stg_inference_engine_hourly VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?);
