-- Facts of one month, step 040, run once per slice of the month's hours: the device-hour facts, one SELECT
-- of named CTEs over _facility (step 035). Slice bounds: getvariable('slice_start') and
-- getvariable('slice_end') (store/rebuild.py sets them, and month_start/month_end). Every row of a slice
-- depends only on its own hour and on month-level inputs (_site_hour_kwh, fact_instrument_month, the
-- dimensions), so slicing changes which rows one statement holds, never a value (docs/scale.md).
-- Every sum is exact_sum (sql/macros.sql), so the build is bit-identical on every rebuild whatever the
-- number of DuckDB threads or slices; `fac` (the _facility view) is joined where it is read rather than
-- stored again (measured: less work than materialising 3.8 M rows for a 10,000-GPU week).

INSERT INTO fact_device_hour BY NAME
WITH
-- Facility energy (step 035, the one and only place PUE is applied).
fac AS NOT MATERIALIZED (
    SELECT * FROM _facility WHERE hour_utc >= getvariable('slice_start') AND hour_utc < getvariable('slice_end')
),
-- Site-hour and zone-hour consumption (facility level) of the slice's hours (step 035 sums them).
site_hour_kwh AS MATERIALIZED (
    SELECT * FROM _site_hour_kwh
     WHERE hour_utc >= getvariable('slice_start') AND hour_utc < getvariable('slice_end')
),
zone_hour_kwh AS MATERIALIZED (
    SELECT zone, hour_utc, exact_sum(kwh) AS kwh FROM site_hour_kwh GROUP BY ALL
),
-- Market-based coverage per site and month, from the instruments as applied (step 035, the cap's home):
-- the covered share and the volume-weighted factor of the site-month's instruments.
site_month_market AS (
    SELECT site,
           CASE WHEN any_value(site_consumption_kwh) > 0 THEN exact_sum(applied_kwh) / any_value(site_consumption_kwh)
                ELSE 0 END AS covered_ratio,
           CASE WHEN exact_sum(allocated_kwh) > 0 THEN exact_sum(allocated_kwh * grams_per_kwh) / exact_sum(allocated_kwh)
                ELSE 0 END AS instrument_grams_per_kwh
      FROM fact_instrument_month WHERE month = CAST(getvariable('month_start') AS DATE) GROUP BY site
),
-- Hourly CFE per site: hourly-matched instrument supply (PPAs) plus the grid's carbon-free share
-- of the rest of the hour's consumption.
ppa AS (
    SELECT sh.site, sh.hour_utc,
           exact_sum(CASE WHEN i.site = sh.site THEN i.kwh_per_hour
                    ELSE i.kwh_per_hour * sh.kwh / nullif(zh.kwh, 0) END) AS kwh
      FROM site_hour_kwh sh JOIN zone_hour_kwh zh ON zh.zone = sh.zone AND zh.hour_utc = sh.hour_utc
      JOIN _instrument i ON i.hourly_matched AND (i.site = sh.site OR i.market = sh.zone)
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
    SELECT d.site, exact_sum(CASE WHEN d.kind = 'diesel' THEN scope1_diesel_kg(d.quantity, d.kg_co2e_per_unit)
                            ELSE scope1_refrigerant_kg(d.quantity, d.kg_co2e_per_unit) END) * 1000.0 AS g
      FROM dim_scope1 d WHERE d.month = CAST(getvariable('month_start') AS DATE) GROUP BY d.site
),
-- The site's consumption over the whole month (not only the slice): the share's denominator.
site_month_scope1 AS (
    SELECT s.site, s.g, exact_sum(sh.kwh) AS kwh FROM scope1_site s JOIN _site_hour_kwh sh ON sh.site = s.site
     GROUP BY s.site, s.g
),
-- Embodied carbon per device-hour (GPUs by model) and node-hour (overhead line), first match wins.
embodied_gpu AS (
    SELECT m.gpu_model, arg_min(embodied_share(d.kg_co2e * 1000.0, 1, d.life_years), d.ord) AS g_per_hour
      FROM (SELECT DISTINCT gpu_model FROM fac WHERE component = 'gpu') m
      JOIN dim_embodied d ON d.gpu_model_glob IS NOT NULL AND m.gpu_model GLOB d.gpu_model_glob
     GROUP BY m.gpu_model
),
-- A GPU's hourly embodied share is split over its rows of the hour (e.g. a measured and an estimated one).
gpu_rows AS (
    SELECT hour_utc, node, device, count(*) AS rows FROM fac WHERE component = 'gpu' GROUP BY ALL
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
       gb.basis AS intensity_basis,
       g.grams_per_kwh IS NULL AS intensity_missing,
       f.site IS NULL AS site_unmapped,
       s.residual_mix_grams_per_kwh IS NULL AND coalesce(mk.covered_ratio, 0) < 1 AS residual_mix_missing,
       scope2_location_g(f.facility_kwh, g.grams_per_kwh) AS scope2_location_g,
       scope2_market_g(f.facility_kwh, coalesce(mk.covered_ratio, 0), coalesce(mk.instrument_grams_per_kwh, 0),
                       coalesce(s.residual_mix_grams_per_kwh, g.grams_per_kwh)) AS scope2_market_g,
       CASE WHEN s1.kwh > 0 THEN s1.g * f.facility_kwh / s1.kwh ELSE 0 END AS scope1_g,
       CASE WHEN f.component = 'gpu' THEN coalesce(eg.g_per_hour, 0) / gr.rows
            WHEN f.component = 'overhead' THEN coalesce(en.g_per_hour, 0)
            ELSE 0 END AS scope3_embodied_g,
       scope3_upstream_g(f.facility_kwh, upstream_grams_per_kwh(gb.upstream_grams_per_kwh, gb.basis,
                                                                s.upstream_grams_per_kwh)) AS scope3_upstream_g,
       water_onsite_l(s.wue_liters_per_kwh, f.it_kwh) AS water_onsite_l,
       coalesce(water_offsite_l(f.facility_kwh, s.offsite_water_liters_per_kwh), 0) AS water_offsite_l,
       f.facility_kwh * c.cfe_ratio AS cfe_kwh,
       gm.grams_per_kwh AS marginal_grams_per_kwh
  FROM fac f
  LEFT JOIN dim_site s ON s.site = f.site
  LEFT JOIN stg_grid_intensity g ON g.zone = f.zone AND g.hour_utc = f.hour_utc AND g.signal = 'average'
  LEFT JOIN stg_grid_basis gb ON gb.zone = f.zone AND gb.hour_utc = f.hour_utc AND gb.signal = 'average'
  LEFT JOIN stg_grid_intensity gm ON gm.zone = f.zone AND gm.hour_utc = f.hour_utc AND gm.signal = 'marginal'
  LEFT JOIN site_month_market mk ON mk.site = f.site
  LEFT JOIN site_month_scope1 s1 ON s1.site = f.site
  LEFT JOIN site_hour_cfe c ON c.site = f.site AND c.hour_utc = f.hour_utc
  LEFT JOIN embodied_gpu eg ON eg.gpu_model = f.gpu_model
  LEFT JOIN embodied_node en ON en.node = f.node
  LEFT JOIN gpu_rows gr ON f.component = 'gpu' AND gr.hour_utc = f.hour_utc AND gr.node = f.node
                       AND gr.device = f.device;
