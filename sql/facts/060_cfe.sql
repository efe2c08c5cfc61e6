-- Facts of one month, step 060: hourly carbon-free energy per site.
-- Month bounds: getvariable('month_start') and getvariable('month_end') (store/rebuild.py sets them).

-- Hourly CFE per site: hourly-matched instrument supply (PPAs) plus the grid's carbon-free share
-- of the rest of the hour's consumption.
CREATE OR REPLACE TEMP TABLE _site_hour_cfe AS
WITH ppa AS (
    SELECT sh.site, sh.hour_utc,
           sum(CASE WHEN i.site = sh.site THEN i.kwh_per_hour
                    ELSE i.kwh_per_hour * sh.kwh / nullif(zh.kwh, 0) END) AS kwh
      FROM _site_hour_kwh sh JOIN _zone_hour_kwh zh ON zh.zone = sh.zone AND zh.hour_utc = sh.hour_utc
      JOIN _inst i ON i.hourly_matched AND (i.site = sh.site OR i.market = sh.zone)
                  AND sh.hour_utc >= i.start_utc AND sh.hour_utc < i.end_utc
     GROUP BY sh.site, sh.hour_utc
)
SELECT sh.site, sh.hour_utc,
       cfe_score(sh.kwh, coalesce(p.kwh, 0) + coalesce(g.cfe_ratio, 0) * greatest(sh.kwh - coalesce(p.kwh, 0), 0))
         AS cfe_ratio
  FROM _site_hour_kwh sh
  LEFT JOIN ppa p ON p.site = sh.site AND p.hour_utc = sh.hour_utc
  LEFT JOIN stg_grid_intensity g ON g.zone = sh.zone AND g.hour_utc = sh.hour_utc AND g.signal = 'average';
