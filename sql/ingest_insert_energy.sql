-- One hour window's energy rows in a single statement. Parameters are parallel lists (one element
-- per row; $hour and $source are the window's): set-based, about 100x faster than a row-at-a-time
-- executemany, with no DataFrame library needed.
INSERT INTO stg_energy_hourly (hour_utc, node, cluster, site_label, device, component, domain, gpu_model, method,
                               namespace, team, joules, source)
SELECT $hour, unnest($node), unnest($cluster), unnest($site_label), unnest($device), unnest($component),
       unnest($domain), unnest($gpu_model), unnest($method), unnest($namespace), unnest($team),
       unnest($joules)::DOUBLE, $source;
