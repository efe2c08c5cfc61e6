-- Facts of one month, step 005: record the config (file and SHA-256 from dim_config) and the schema version
-- the month's facts are built with, for the report's data lineage.
-- Month bounds: getvariable('month_start') (store/rebuild.py sets it).

DELETE FROM fact_month_build WHERE month = CAST(getvariable('month_start') AS DATE);
INSERT INTO fact_month_build
SELECT CAST(getvariable('month_start') AS DATE), (SELECT min(path) FROM dim_config),
       (SELECT min(sha256) FROM dim_config), (SELECT max(version) FROM schema_version),
       now() AT TIME ZONE 'UTC';
