-- The facility dimensions, replaced from the config on every run (aggregator/store/dimensions.py),
-- in one transaction: the facts are rebuilt against exactly the config that was loaded.
-- Positional parameters follow the columns of schema/001_initial.sql and later migrations.

-- name: clear
DELETE FROM dim_site;
DELETE FROM dim_site_pue;
DELETE FROM dim_node_pattern;
DELETE FROM dim_instrument;
DELETE FROM dim_scope1;
DELETE FROM dim_embodied;
DELETE FROM dim_embodied_acquisition;
DELETE FROM dim_config;
DELETE FROM dim_budget;
DELETE FROM dim_team_rule;

-- name: insert_site
-- (site, zone, pue_default, wue, offsite water, residual mix, upstream, overhead ratio, overhead W per node,
--  residual mix source)
INSERT INTO dim_site (site, zone, pue_default, wue_liters_per_kwh, offsite_water_liters_per_kwh,
                      residual_mix_grams_per_kwh, upstream_grams_per_kwh, overhead_ratio, overhead_watts_per_node,
                      residual_mix_source)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert_site_pue
-- One PUE meter reading: (site, start_utc, end_utc, total_kwh, it_kwh).
INSERT INTO dim_site_pue VALUES (?, ?, ?, ?, ?);

-- name: insert_node_pattern
-- (site, glob, ord): the first matching glob in file order wins (facts/010_node_site.sql).
INSERT INTO dim_node_pattern VALUES (?, ?, ?);

-- name: insert_instrument
INSERT INTO dim_instrument VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert_scope1
INSERT INTO dim_scope1 VALUES (?, ?, ?, ?, ?, ?);

-- name: insert_embodied
INSERT INTO dim_embodied VALUES (?, ?, ?, ?, ?);

-- name: insert_embodied_acquisition
-- (ord of the dim_embodied entry, acquisition date, units, site or NULL)
INSERT INTO dim_embodied_acquisition VALUES (?, ?, ?, ?);

-- name: insert_config
-- (config file path, SHA-256 of its bytes, when it was loaded into the store, UTC)
INSERT INTO dim_config VALUES (?, ?, now() AT TIME ZONE 'UTC');

-- name: insert_budget
INSERT INTO dim_budget VALUES (?, ?, ?, ?);

-- name: insert_team_rule
-- (ord, team, namespace glob, workload glob, cluster glob, node glob): first match in file order wins
-- (facts/slice/060_workload_hour.sql); a NULL glob matches any value.
INSERT INTO dim_team_rule VALUES (?, ?, ?, ?, ?, ?);
