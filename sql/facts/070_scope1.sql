-- Facts of one month, step 070: Scope 1 per site.
-- Month bounds: getvariable('month_start') and getvariable('month_end') (store/rebuild.py sets them).

-- Scope 1 per site and month (kg -> g), shared by facility energy.
CREATE OR REPLACE TEMP TABLE _site_month_scope1 AS
WITH s1 AS (
    SELECT d.site, sum(CASE WHEN d.kind = 'diesel' THEN scope1_diesel_kg(d.quantity, d.kg_co2e_per_unit)
                            ELSE scope1_refrigerant_kg(d.quantity, d.kg_co2e_per_unit) END) * 1000.0 AS g
      FROM dim_scope1 d WHERE d.month = CAST(getvariable('month_start') AS DATE) GROUP BY d.site
)
SELECT s1.site, s1.g, sum(sh.kwh) AS kwh FROM s1 JOIN _site_hour_kwh sh ON sh.site = s1.site
 GROUP BY s1.site, s1.g;
