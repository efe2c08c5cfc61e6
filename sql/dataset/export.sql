-- The Parquet dataset (aggregator/store/dataset.py): what a site's aggregator writes and what a fleet
-- rollup reads back. Layout <root>/<table>/month=YYYY-MM/site=<site>/; the partition columns are in
-- the path only. Month bounds: getvariable('month_start'), getvariable('month_end') (store/rebuild.py).
-- {table} is one of dataset.py's fixed table names, substituted before the statement runs.

-- name: hourly_facts
-- The fact tables the rollups read: every fact_* table with an hour (hour_utc) and a site. Monthly fact
-- tables (instrument allocation, build record) are the inventory's and the lineage's, not exported.
SELECT c.table_name FROM information_schema.columns c
 WHERE c.table_name LIKE 'fact\_%' ESCAPE '\' AND c.column_name IN ('hour_utc', 'site')
 GROUP BY c.table_name HAVING count(*) = 2 ORDER BY c.table_name;

-- name: rollups
-- Every rollup table (period, period_start, ...).
SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'rollup%' ORDER BY table_name;

-- name: months
-- Every month that has facts, oldest first. Columns: month (DATE).
SELECT DISTINCT CAST(date_trunc('month', hour_utc) AS DATE) AS month FROM fact_device_hour ORDER BY month;

-- name: sites
-- The sites with facts in the month (NULL: nodes no site pattern matched). Columns: site.
SELECT DISTINCT site FROM fact_device_hour
 WHERE hour_utc >= getvariable('month_start') AND hour_utc < getvariable('month_end');

-- name: facts
-- One month of a fact table with its partition columns (month, site), for COPY ... PARTITION_BY.
SELECT *, strftime(hour_utc, '%Y-%m') AS month FROM {table}
 WHERE hour_utc >= getvariable('month_start') AND hour_utc < getvariable('month_end');

-- name: rollup_rows
-- A one-site store's rollups of the month, under that site (getvariable('export_site')).
SELECT *, strftime(period_start, '%Y-%m') AS month, getvariable('export_site') AS site FROM {table}
 WHERE period_start >= getvariable('month_start') AND period_start < getvariable('month_end');

-- name: load
-- Every site's files of one month of a fact table, appended to the table by column name.
-- Partition values are read as text (a site named "1" stays the string '1'); $1 is the month's glob.
INSERT INTO {table} BY NAME
SELECT * EXCLUDE (month)
  FROM read_parquet($1, hive_partitioning = true, hive_types_autocast = false, union_by_name = true);
