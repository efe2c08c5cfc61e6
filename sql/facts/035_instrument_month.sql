-- Facts of one month, step 035: facility energy, and market-based instruments as applied per site and instrument.
-- Month bounds: getvariable('month_start') and getvariable('month_end') (store/rebuild.py sets them).
-- The one home of the instrument allocation (docs/accounting.md, section 6.2): each instrument's volume is
-- spread evenly over the hours of its period and the part in the month counts; a market instrument is
-- shared by its zone's sites in proportion to their consumption; the sum applied to a site-month is capped
-- at its consumption (surplus is not moved or banked). Step 040 reads these rows for market-based Scope 2.

-- Facility energy: the one and only place PUE is applied (IT kWh x the site-hour's PUE); step 040 reads it.
-- A view: joined where it is read (here and in 040), not written out a third time.
CREATE OR REPLACE TEMP VIEW _facility AS
SELECT e.*, sh.zone, sh.pue, sh.pue_source,
       CASE WHEN sh.pue IS NULL THEN NULL ELSE facility_kwh(e.it_kwh, sh.pue) END AS facility_kwh
  FROM _energy e LEFT JOIN _site_hour sh ON sh.site = e.site AND sh.hour_utc = e.hour_utc;

-- Every instrument's volume per hour of its period and its hours in the month (040's hourly CFE match too).
CREATE OR REPLACE TEMP TABLE _instrument AS
SELECT i.*, i.mwh * 1000.0 * 3600.0 / (epoch(i.end_utc) - epoch(i.start_utc)) AS kwh_per_hour,
       greatest(0.0, (epoch(least(i.end_utc, getvariable('month_end')))
                      - epoch(greatest(i.start_utc, getvariable('month_start')))) / 3600.0) AS hours_in_month
  FROM dim_instrument i;

DELETE FROM fact_instrument_month WHERE month = CAST(getvariable('month_start') AS DATE);

-- Facility consumption per site and hour, over the whole month: the allocation below and the slices of
-- step slice/040 (hourly CFE, the Scope 1 share of a site-month) all read it, so it is summed once here.
CREATE OR REPLACE TEMP TABLE _site_hour_kwh AS
SELECT site, zone, hour_utc, exact_sum(facility_kwh) AS kwh FROM _facility WHERE site IS NOT NULL GROUP BY ALL;

INSERT INTO fact_instrument_month BY NAME
WITH site_cons AS (SELECT site, zone, exact_sum(kwh) AS kwh FROM _site_hour_kwh GROUP BY ALL),
zone_cons AS (SELECT zone, exact_sum(kwh) AS kwh FROM site_cons GROUP BY ALL),
allocated AS (
    SELECT sc.site, sc.zone, sc.kwh AS site_consumption_kwh, i.name AS instrument, i.type,
           CASE WHEN i.site IS NOT NULL THEN 'site' ELSE 'market ' || i.market END AS claimed_for,
           i.start_utc AS vintage_start_utc, i.end_utc AS vintage_end_utc, i.grams_per_kwh,
           CASE WHEN i.site IS NOT NULL THEN i.kwh_per_hour * i.hours_in_month
                ELSE i.kwh_per_hour * i.hours_in_month * sc.kwh / nullif(zc.kwh, 0) END AS allocated_kwh
      FROM site_cons sc JOIN zone_cons zc ON zc.zone = sc.zone
      JOIN _instrument i ON (i.site = sc.site OR i.market = sc.zone) AND i.hours_in_month > 0
)
SELECT CAST(getvariable('month_start') AS DATE) AS month, site, zone, instrument, type, claimed_for,
       vintage_start_utc, vintage_end_utc, grams_per_kwh, allocated_kwh,
       -- the cap: what a site-month applies never exceeds its consumption
       allocated_kwh * CASE WHEN site_allocated_kwh > 0
                            THEN least(1.0, site_consumption_kwh / site_allocated_kwh)
                            ELSE 0 END AS applied_kwh,
       site_consumption_kwh
  FROM allocated a
  JOIN (SELECT site, exact_sum(allocated_kwh) AS site_allocated_kwh FROM allocated
         WHERE allocated_kwh IS NOT NULL GROUP BY site) USING (site)
 WHERE allocated_kwh IS NOT NULL;
