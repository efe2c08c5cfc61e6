-- Which intensity rows the selected hours used: per zone and signal, the source, hours and fills.
WITH zh AS (SELECT DISTINCT zone, hour_utc FROM _disclosure_rows WHERE zone IS NOT NULL)
SELECT g.zone, g.signal, coalesce(g.source, '') AS source, count(*) AS hours,
       count(*) FILTER (WHERE g.filled) AS filled_hours,
       list(DISTINCT g.fill_rule ORDER BY g.fill_rule) FILTER (WHERE g.fill_rule IS NOT NULL) AS fill_rules
  FROM zh JOIN stg_grid_intensity g ON g.zone = zh.zone AND g.hour_utc = zh.hour_utc
 GROUP BY ALL ORDER BY g.zone, g.signal, source;
