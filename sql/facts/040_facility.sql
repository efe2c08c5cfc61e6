-- Facts of one month, step 040: facility energy and the site-hour and zone-hour consumption.
-- Month bounds: getvariable('month_start') and getvariable('month_end') (store/rebuild.py sets them).

-- Facility energy: the one and only place PUE is applied.
CREATE OR REPLACE TEMP TABLE _fac AS
SELECT e.*, sh.zone, sh.pue, sh.pue_source,
       CASE WHEN sh.pue IS NULL THEN NULL ELSE facility_kwh(e.it_kwh, sh.pue) END AS facility_kwh
  FROM _energy e LEFT JOIN _site_hour sh ON sh.site = e.site AND sh.hour_utc = e.hour_utc;

-- Site-hour and zone-hour consumption (facility level).
CREATE OR REPLACE TEMP TABLE _site_hour_kwh AS
SELECT site, zone, hour_utc, sum(facility_kwh) AS kwh FROM _fac WHERE site IS NOT NULL GROUP BY ALL;
CREATE OR REPLACE TEMP TABLE _zone_hour_kwh AS
SELECT zone, hour_utc, sum(kwh) AS kwh FROM _site_hour_kwh GROUP BY ALL;
