-- Facts of one month, step 050: energy attribute instruments and market-based coverage.
-- Month bounds: getvariable('month_start') and getvariable('month_end') (store/rebuild.py sets them).

-- Instruments: volume spread evenly over the hours of their period.
CREATE OR REPLACE TEMP TABLE _inst AS
SELECT i.*, i.mwh * 1000.0 * 3600.0 / (epoch(i.end_utc) - epoch(i.start_utc)) AS kwh_per_hour,
       greatest(0.0, (epoch(least(i.end_utc, getvariable('month_end')))
                            - epoch(greatest(i.start_utc, getvariable('month_start')))) / 3600.0)
         AS hours_in_month
  FROM dim_instrument i;

-- Market-based coverage per site and month: site instruments plus a consumption-weighted share
-- of the market's (zone's) instruments, matched against the month's consumption.
CREATE OR REPLACE TEMP TABLE _site_month_market AS
WITH site_cons AS (SELECT site, zone, sum(kwh) AS kwh FROM _site_hour_kwh GROUP BY ALL),
zone_cons AS (SELECT zone, sum(kwh) AS kwh FROM site_cons GROUP BY ALL),
site_inst AS (SELECT site, sum(kwh_per_hour * hours_in_month) AS kwh,
                     sum(kwh_per_hour * hours_in_month * grams_per_kwh) AS g
                FROM _inst WHERE site IS NOT NULL GROUP BY ALL),
mkt_inst AS (SELECT market AS zone, sum(kwh_per_hour * hours_in_month) AS kwh,
                    sum(kwh_per_hour * hours_in_month * grams_per_kwh) AS g
               FROM _inst WHERE market IS NOT NULL GROUP BY ALL),
avail AS (
    SELECT sc.site, sc.kwh AS cons,
           coalesce(si.kwh, 0) + coalesce(mi.kwh * sc.kwh / nullif(zc.kwh, 0), 0) AS inst_kwh,
           coalesce(si.g, 0) + coalesce(mi.g * sc.kwh / nullif(zc.kwh, 0), 0) AS inst_g
      FROM site_cons sc JOIN zone_cons zc ON zc.zone = sc.zone
      LEFT JOIN site_inst si ON si.site = sc.site LEFT JOIN mkt_inst mi ON mi.zone = sc.zone
)
SELECT site,
       CASE WHEN cons > 0 THEN least(cons, inst_kwh) / cons ELSE 0 END AS covered_ratio,
       CASE WHEN inst_kwh > 0 THEN inst_g / inst_kwh ELSE 0 END AS instrument_grams_per_kwh
  FROM avail;
