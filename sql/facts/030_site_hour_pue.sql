-- Facts of one month, step 030: PUE per site and hour.
-- Month bounds: getvariable('month_start') and getvariable('month_end') (store/rebuild.py sets them).

-- PUE per site and hour: an hourly meter reading, else a monthly one, else the configured constant.
CREATE OR REPLACE TEMP TABLE _site_hour AS
WITH sh AS (SELECT DISTINCT site, hour_utc FROM _energy WHERE site IS NOT NULL),
metered AS (
    SELECT sh.site, sh.hour_utc,
           arg_min(pue_ratio(m.total_kwh, m.it_kwh), m.end_utc - m.start_utc) AS pue,
           arg_min(CASE WHEN m.end_utc - m.start_utc <= INTERVAL 1 HOUR THEN 'meter_hour' ELSE 'meter_period' END,
                   m.end_utc - m.start_utc) AS pue_source
      FROM sh JOIN dim_site_pue m ON m.site = sh.site AND sh.hour_utc >= m.start_utc AND sh.hour_utc < m.end_utc
     GROUP BY sh.site, sh.hour_utc
)
SELECT sh.site, sh.hour_utc, s.zone,
       coalesce(m.pue, s.pue_default) AS pue, coalesce(m.pue_source, 'default') AS pue_source
  FROM sh JOIN dim_site s ON s.site = sh.site
  LEFT JOIN metered m ON m.site = sh.site AND m.hour_utc = sh.hour_utc;
