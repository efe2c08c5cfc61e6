-- Facts of one month, step 010: which site each node belongs to.
-- Month bounds: getvariable('month_start') and getvariable('month_end') (store/rebuild.py sets them).

-- Node -> site: config globs first (file order), else the exporter's site label if it names a site.
CREATE OR REPLACE TEMP TABLE _node_site AS
WITH nodes AS (
    SELECT DISTINCT node, site_label FROM stg_energy_hourly
     WHERE hour_utc >= getvariable('month_start') AND hour_utc < getvariable('month_end')
    UNION
    SELECT DISTINCT node, site_label FROM stg_inference_hourly
     WHERE hour_utc >= getvariable('month_start') AND hour_utc < getvariable('month_end')
), by_glob AS (
    SELECT n.node, n.site_label, arg_min(p.site, p.ord) AS site
      FROM nodes n JOIN dim_node_pattern p ON n.node GLOB p.pattern
     GROUP BY n.node, n.site_label
)
SELECT n.node, n.site_label, coalesce(g.site, s.site) AS site
  FROM nodes n
  LEFT JOIN by_glob g ON g.node = n.node AND g.site_label IS NOT DISTINCT FROM n.site_label
  LEFT JOIN dim_site s ON s.site = n.site_label;
