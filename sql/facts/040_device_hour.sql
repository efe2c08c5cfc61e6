-- Facts of one month, step 040: the device-hour facts, one SELECT of named CTEs over _energy and _site_hour.
-- Month bounds: getvariable('month_start') and getvariable('month_end') (store/rebuild.py sets them).
-- CTEs read more than once are MATERIALIZED: computed once, in storage order, as the temp tables
-- they replace were (the float sums below must add in the same order on every rebuild).

INSERT INTO fact_device_hour BY NAME
WITH
-- Facility energy: the one and only place PUE is applied.
fac AS MATERIALIZED (
    SELECT e.*, sh.zone, sh.pue, sh.pue_source,
           CASE WHEN sh.pue IS NULL THEN NULL ELSE facility_kwh(e.it_kwh, sh.pue) END AS facility_kwh
      FROM _energy e LEFT JOIN _site_hour sh ON sh.site = e.site AND sh.hour_utc = e.hour_utc
),
-- Site-hour and zone-hour consumption (facility level).
site_hour_kwh AS MATERIALIZED (
    SELECT site, zone, hour_utc, sum(facility_kwh) AS kwh FROM fac WHERE site IS NOT NULL GROUP BY ALL
),
zone_hour_kwh AS MATERIALIZED (
    SELECT zone, hour_utc, sum(kwh) AS kwh FROM site_hour_kwh GROUP BY ALL
),
-- Instruments: volume spread evenly over the hours of their period.
inst AS MATERIALIZED (
    SELECT i.*, i.mwh * 1000.0 * 3600.0 / (epoch(i.end_utc) - epoch(i.start_utc)) AS kwh_per_hour,
           greatest(0.0, (epoch(least(i.end_utc, getvariable('month_end')))
                                - epoch(greatest(i.start_utc, getvariable('month_start')))) / 3600.0)
             AS hours_in_month
      FROM dim_instrument i
),
-- Market-based coverage per site and month: site instruments plus a consumption-weighted share
-- of the market's (zone's) instruments, matched against the month's consumption.
site_cons AS MATERIALIZED (SELECT site, zone, sum(kwh) AS kwh FROM site_hour_kwh GROUP BY ALL),
zone_cons AS (SELECT zone, sum(kwh) AS kwh FROM site_cons GROUP BY ALL),
site_inst AS (SELECT site, sum(kwh_per_hour * hours_in_month) AS kwh,
                     sum(kwh_per_hour * hours_in_month * grams_per_kwh) AS g
                FROM inst WHERE site IS NOT NULL GROUP BY ALL),
mkt_inst AS (SELECT market AS zone, sum(kwh_per_hour * hours_in_month) AS kwh,
                    sum(kwh_per_hour * hours_in_month * grams_per_kwh) AS g
               FROM inst WHERE market IS NOT NULL GROUP BY ALL),
avail AS (
    SELECT sc.site, sc.kwh AS cons,
           coalesce(si.kwh, 0) + coalesce(mi.kwh * sc.kwh / nullif(zc.kwh, 0), 0) AS inst_kwh,
           coalesce(si.g, 0) + coalesce(mi.g * sc.kwh / nullif(zc.kwh, 0), 0) AS inst_g
      FROM site_cons sc JOIN zone_cons zc ON zc.zone = sc.zone
      LEFT JOIN site_inst si ON si.site = sc.site LEFT JOIN mkt_inst mi ON mi.zone = sc.zone
),
site_month_market AS (
    SELECT site,
           CASE WHEN cons > 0 THEN least(cons, inst_kwh) / cons ELSE 0 END AS covered_ratio,
           CASE WHEN inst_kwh > 0 THEN inst_g / inst_kwh ELSE 0 END AS instrument_grams_per_kwh
      FROM avail
),
-- Hourly CFE per site: hourly-matched instrument supply (PPAs) plus the grid's carbon-free share
-- of the rest of the hour's consumption.
ppa AS (
    SELECT sh.site, sh.hour_utc,
           sum(CASE WHEN i.site = sh.site THEN i.kwh_per_hour
                    ELSE i.kwh_per_hour * sh.kwh / nullif(zh.kwh, 0) END) AS kwh
      FROM site_hour_kwh sh JOIN zone_hour_kwh zh ON zh.zone = sh.zone AND zh.hour_utc = sh.hour_utc
      JOIN inst i ON i.hourly_matched AND (i.site = sh.site OR i.market = sh.zone)
                 AND sh.hour_utc >= i.start_utc AND sh.hour_utc < i.end_utc
     GROUP BY sh.site, sh.hour_utc
),
site_hour_cfe AS (
    SELECT sh.site, sh.hour_utc,
           cfe_score(sh.kwh, coalesce(p.kwh, 0) + coalesce(g.cfe_ratio, 0) * greatest(sh.kwh - coalesce(p.kwh, 0), 0))
             AS cfe_ratio
      FROM site_hour_kwh sh
      LEFT JOIN ppa p ON p.site = sh.site AND p.hour_utc = sh.hour_utc
      LEFT JOIN stg_grid_intensity g ON g.zone = sh.zone AND g.hour_utc = sh.hour_utc AND g.signal = 'average'
),
-- Scope 1 per site and month (kg -> g), shared by facility energy.
scope1_site AS (
    SELECT d.site, sum(CASE WHEN d.kind = 'diesel' THEN scope1_diesel_kg(d.quantity, d.kg_co2e_per_unit)
                            ELSE scope1_refrigerant_kg(d.quantity, d.kg_co2e_per_unit) END) * 1000.0 AS g
      FROM dim_scope1 d WHERE d.month = CAST(getvariable('month_start') AS DATE) GROUP BY d.site
),
site_month_scope1 AS (
    SELECT s.site, s.g, sum(sh.kwh) AS kwh FROM scope1_site s JOIN site_hour_kwh sh ON sh.site = s.site
     GROUP BY s.site, s.g
),
-- Embodied carbon per device-hour (GPUs by model) and node-hour (overhead line), first match wins.
embodied_gpu AS (
    SELECT m.gpu_model, arg_min(embodied_share(d.kg_co2e * 1000.0, 1, d.life_years), d.ord) AS g_per_hour
      FROM (SELECT DISTINCT gpu_model FROM fac WHERE component = 'gpu') m
      JOIN dim_embodied d ON d.gpu_model_glob IS NOT NULL AND m.gpu_model GLOB d.gpu_model_glob
     GROUP BY m.gpu_model
),
embodied_node AS (
    SELECT n.node, arg_min(embodied_share(d.kg_co2e * 1000.0, 1, d.life_years), d.ord) AS g_per_hour
      FROM (SELECT DISTINCT node FROM fac) n
      JOIN dim_embodied d ON d.node_glob IS NOT NULL AND n.node GLOB d.node_glob
     GROUP BY n.node
)
SELECT f.hour_utc, f.site, f.zone, f.cluster, f.node, f.device, f.component, f.domain, f.gpu_model,
       f.method, f.it_kwh, f.pue, f.pue_source, f.facility_kwh,
       g.grams_per_kwh,
       coalesce(g.filled, false) AS intensity_filled,
       CASE WHEN g.filled THEN g.fill_rule END AS intensity_fill_rule,
       g.grams_per_kwh IS NULL AS intensity_missing,
       f.site IS NULL AS site_unmapped,
       s.residual_mix_grams_per_kwh IS NULL AND coalesce(mk.covered_ratio, 0) < 1 AS residual_mix_missing,
       scope2_location_g(f.facility_kwh, g.grams_per_kwh) AS scope2_location_g,
       scope2_market_g(f.facility_kwh, coalesce(mk.covered_ratio, 0), coalesce(mk.instrument_grams_per_kwh, 0),
                       coalesce(s.residual_mix_grams_per_kwh, g.grams_per_kwh)) AS scope2_market_g,
       CASE WHEN s1.kwh > 0 THEN s1.g * f.facility_kwh / s1.kwh ELSE 0 END AS scope1_g,
       CASE WHEN f.component = 'gpu' THEN coalesce(eg.g_per_hour, 0)
                / count(*) OVER (PARTITION BY f.hour_utc, f.node, f.device, f.component)
            WHEN f.component = 'overhead' THEN coalesce(en.g_per_hour, 0)
            ELSE 0 END AS scope3_embodied_g,
       scope3_upstream_g(f.facility_kwh, s.upstream_grams_per_kwh) AS scope3_upstream_g,
       water_onsite_l(s.wue_liters_per_kwh, f.it_kwh) AS water_onsite_l,
       coalesce(water_offsite_l(f.facility_kwh, s.offsite_water_liters_per_kwh), 0) AS water_offsite_l,
       f.facility_kwh * c.cfe_ratio AS cfe_kwh,
       gm.grams_per_kwh AS marginal_grams_per_kwh
  FROM fac f
  LEFT JOIN dim_site s ON s.site = f.site
  LEFT JOIN stg_grid_intensity g ON g.zone = f.zone AND g.hour_utc = f.hour_utc AND g.signal = 'average'
  LEFT JOIN stg_grid_intensity gm ON gm.zone = f.zone AND gm.hour_utc = f.hour_utc AND gm.signal = 'marginal'
  LEFT JOIN site_month_market mk ON mk.site = f.site
  LEFT JOIN site_month_scope1 s1 ON s1.site = f.site
  LEFT JOIN site_hour_cfe c ON c.site = f.site AND c.hour_utc = f.hour_utc
  LEFT JOIN embodied_gpu eg ON eg.gpu_model = f.gpu_model
  LEFT JOIN embodied_node en ON en.node = f.node;
