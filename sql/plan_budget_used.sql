-- Carbon budget burn (budget_burn.py): every configured budget with what counts against it.
-- Teams and sites: location-based Scope 2 + Scope 1 + Scope 3 (embodied, upstream) from the monthly
-- rollup; models: location-based Scope 2 of their inference energy (rollup_inference, all phases).
-- Params: none. One row per budget; used_g is NULL when nothing ran in that month.
WITH dev AS (
    SELECT dimension, key, CAST(period_start AS DATE) AS month, count(*) AS rollup_rows,
           sum(coalesce(scope2_location_g, 0) + coalesce(scope1_g, 0) + coalesce(scope3_embodied_g, 0)
               + coalesce(scope3_upstream_g, 0)) AS used_g
      FROM rollup WHERE period = 'month' AND dimension IN ('team', 'site')
     GROUP BY ALL
), inf AS (
    SELECT 'model' AS dimension, model AS key, CAST(period_start AS DATE) AS month, count(*) AS rollup_rows,
           sum(coalesce(scope2_location_g, 0)) AS used_g
      FROM rollup_inference WHERE period = 'month'
     GROUP BY ALL
), used AS (SELECT * FROM dev UNION ALL SELECT * FROM inf)
SELECT b.owner_kind, b.owner, b.month, b.kg_co2e, u.used_g, coalesce(u.rollup_rows, 0) AS rollup_rows
  FROM dim_budget b
  LEFT JOIN used u ON u.dimension = b.owner_kind AND u.key = b.owner AND u.month = b.month
 ORDER BY b.month, b.owner_kind, b.owner;
