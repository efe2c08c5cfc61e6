-- Carbon budgets and their burn (aggregator/planning/budgets.py).

-- name: spend
-- Carbon budget burn (budget_burn.py): what counts against a budget, per owner and month.
-- Teams and sites: location-based Scope 2 + Scope 1 + Scope 3 (embodied, upstream) from the monthly
-- rollup (a NULL term counts as 0, never drops the row); models: location-based Scope 2 of their
-- inference energy (rollup_inference, all phases). Params: none.
-- Columns: owner_kind (team | site | model), owner, month (DATE), used_g, rollup_rows.
WITH dev AS (
    SELECT dimension, key, CAST(period_start AS DATE) AS month,
           sum(coalesce(scope2_location_g, 0) + coalesce(scope1_g, 0) + coalesce(scope3_embodied_g, 0)
               + coalesce(scope3_upstream_g, 0)) AS used_g, count(*) AS rollup_rows
      FROM rollup WHERE period = 'month' AND dimension IN ('team', 'site')
     GROUP BY ALL
), inf AS (
    SELECT 'model' AS dimension, model AS key, CAST(period_start AS DATE) AS month,
           sum(coalesce(scope2_location_g, 0)) AS used_g, count(*) AS rollup_rows
      FROM rollup_inference WHERE period = 'month'
     GROUP BY ALL
)
SELECT * FROM dev UNION ALL SELECT * FROM inf ORDER BY 1, 2, 3;

-- name: budgets
-- Carbon budgets the aggregator last loaded from the facility config (budget_burn.py). Params: none.
SELECT owner_kind, owner, month, kg_co2e FROM dim_budget ORDER BY month, owner_kind, owner;
