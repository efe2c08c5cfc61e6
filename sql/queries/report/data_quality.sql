-- Grid data quality of the month per zone (docs/accounting.md 5.4): which hours rest on a filled
-- intensity (and by which rule), which on an hour the source's own data make implausible
-- (stg_grid_implausible, migration 010), which have none, and how much energy and location-based Scope 2
-- rests on them and on estimated energy. Parameters $month_start, $month_end as in tables.sql.
-- Hour lists are ISO 8601 intervals of consecutive UTC hours, start/end, half-open ("2026-10-01T04:00Z/
-- 2026-10-01T08:00Z" is the four hours from 04:00), separated by "; ".

-- name: data_quality_zones
WITH zh AS (  -- one row per zone and hour of the month's facts
    SELECT zone, hour_utc, fsum(facility_kwh) AS kwh, fsum(scope2_location_g) AS g,
           fsum(facility_kwh) FILTER (WHERE method <> 'measured') AS est_kwh,
           fsum(scope2_location_g) FILTER (WHERE method <> 'measured') AS est_g,
           bool_or(intensity_filled) AS filled, min(intensity_fill_rule) AS rule,
           bool_or(intensity_missing) AS missing
      FROM fact_device_hour
     WHERE hour_utc >= $month_start AND hour_utc < $month_end AND zone IS NOT NULL
     GROUP BY zone, hour_utc
), q AS (
    SELECT zh.*, i.reason AS implausible, g.source
      FROM zh
      LEFT JOIN stg_grid_implausible i ON i.zone = zh.zone AND i.hour_utc = zh.hour_utc AND i.signal = 'average'
      LEFT JOIN stg_grid_intensity g ON g.zone = zh.zone AND g.hour_utc = zh.hour_utc AND g.signal = 'average'
), flagged AS (
    SELECT zone, hour_utc, 'filled' AS kind FROM q WHERE filled
    UNION ALL SELECT zone, hour_utc, 'implausible' FROM q WHERE implausible IS NOT NULL
), runs AS (  -- consecutive hours of one kind: equal hour_utc - n hours within a run
    SELECT zone, kind, min(hour_utc) AS first, max(hour_utc) + INTERVAL 1 HOUR AS stop
      FROM (SELECT *, hour_utc - to_hours(row_number() OVER (PARTITION BY zone, kind ORDER BY hour_utc)) AS run
              FROM flagged)
     GROUP BY zone, kind, run
), ranges AS (
    SELECT zone, kind, string_agg(strftime(first, '%Y-%m-%dT%H:%MZ') || '/' || strftime(stop, '%Y-%m-%dT%H:%MZ'),
                                  '; ' ORDER BY first) AS hours_utc
      FROM runs GROUP BY zone, kind
), rules AS (
    SELECT zone, string_agg(rule || ' (' || n || ' h)', '; ' ORDER BY rule) AS fill_rules
      FROM (SELECT zone, coalesce(rule, 'unnamed') AS rule, count(*) AS n FROM q WHERE filled GROUP BY ALL)
     GROUP BY zone
), sources AS (
    SELECT zone, string_agg(DISTINCT source, '; ' ORDER BY source) AS intensity_sources
      FROM q WHERE source IS NOT NULL GROUP BY zone
)
SELECT $month_start AS period_start, $month_end AS period_end, q.zone, any_value(s.intensity_sources)
         AS intensity_sources,
       count(*) AS hours,
       count(*) FILTER (WHERE filled) AS filled_hours,
       any_value(rf.hours_utc) AS filled_hours_utc,
       any_value(r.fill_rules) AS fill_rules,
       coalesce(fsum(kwh) FILTER (WHERE filled), 0) AS filled_intensity_kwh,
       coalesce(fsum(g) FILTER (WHERE filled), 0) / 1000 AS filled_intensity_kg,
       count(*) FILTER (WHERE implausible IS NOT NULL) AS implausible_hours,
       any_value(ri.hours_utc) AS implausible_hours_utc,
       coalesce(fsum(kwh) FILTER (WHERE implausible IS NOT NULL), 0) AS implausible_kwh,
       coalesce(fsum(g) FILTER (WHERE implausible IS NOT NULL), 0) / 1000 AS implausible_kg,
       count(*) FILTER (WHERE missing) AS missing_intensity_hours,
       coalesce(fsum(est_kwh), 0) AS estimated_energy_kwh,
       coalesce(fsum(est_g), 0) / 1000 AS estimated_energy_kg,
       fsum(kwh) AS facility_kwh, fsum(g) / 1000 AS scope2_location_kg
  FROM q
  LEFT JOIN ranges rf ON rf.zone = q.zone AND rf.kind = 'filled'
  LEFT JOIN ranges ri ON ri.zone = q.zone AND ri.kind = 'implausible'
  LEFT JOIN rules r ON r.zone = q.zone
  LEFT JOIN sources s ON s.zone = q.zone
 GROUP BY q.zone ORDER BY q.zone;

-- name: data_quality_hours
-- The same, one row per zone, hour and issue (tidy, for analysts): filled (detail: the rule),
-- implausible (detail: the reason) or missing_intensity; the hour's facility energy and location-based
-- Scope 2 (0 where the intensity is missing).
WITH zh AS (
    SELECT zone, hour_utc, fsum(facility_kwh) AS facility_kwh, fsum(scope2_location_g) / 1000 AS scope2_location_kg,
           bool_or(intensity_filled) AS filled, min(intensity_fill_rule) AS rule, bool_or(intensity_missing) AS missing
      FROM fact_device_hour
     WHERE hour_utc >= $month_start AND hour_utc < $month_end AND zone IS NOT NULL
     GROUP BY zone, hour_utc
)
SELECT $month_start AS period_start, $month_end AS period_end, zone, hour_utc, issue, detail, facility_kwh,
       coalesce(scope2_location_kg, 0) AS scope2_location_kg
  FROM (SELECT zh.*, 'filled' AS issue, coalesce(rule, 'unnamed') AS detail FROM zh WHERE filled
        UNION ALL
        SELECT zh.*, 'implausible', i.reason FROM zh
          JOIN stg_grid_implausible i ON i.zone = zh.zone AND i.hour_utc = zh.hour_utc AND i.signal = 'average'
        UNION ALL
        SELECT zh.*, 'missing_intensity', 'no average intensity for the hour' FROM zh WHERE missing)
 ORDER BY zone, hour_utc, issue;
