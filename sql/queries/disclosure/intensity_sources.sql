-- Which intensity rows the selected hours used: per zone and signal, the source, hours, fills, and the hours
-- the source's own generation mix makes implausible (stg_grid_implausible, docs/accounting.md 5.3).
WITH zh AS (SELECT DISTINCT zone, hour_utc FROM _disclosure_rows WHERE zone IS NOT NULL)
SELECT g.zone, g.signal, coalesce(g.source, '') AS source, count(*) AS hours,
       count(*) FILTER (WHERE g.filled) AS filled_hours,
       list(DISTINCT g.fill_rule ORDER BY g.fill_rule) FILTER (WHERE g.fill_rule IS NOT NULL) AS fill_rules,
       count(i.reason) AS implausible_hours
  FROM zh JOIN stg_grid_intensity g ON g.zone = zh.zone AND g.hour_utc = zh.hour_utc
  LEFT JOIN stg_grid_implausible i ON i.zone = g.zone AND i.hour_utc = g.hour_utc AND i.signal = g.signal
 GROUP BY ALL ORDER BY g.zone, g.signal, source;
