-- Facts of one month, step 090: the device-hour facts.
-- Month bounds: getvariable('month_start') and getvariable('month_end') (store/rebuild.py sets them).

INSERT INTO fact_device_hour BY NAME
SELECT f.hour_utc, f.site, f.zone, f.cluster, f.node, f.device, f.component, f.domain, f.gpu_model,
       f.namespace, f.team, f.method, f.it_kwh, f.pue, f.pue_source, f.facility_kwh,
       g.grams_per_kwh,
       coalesce(g.filled, false) AS intensity_filled,
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
  FROM _fac f
  LEFT JOIN dim_site s ON s.site = f.site
  LEFT JOIN stg_grid_intensity g ON g.zone = f.zone AND g.hour_utc = f.hour_utc AND g.signal = 'average'
  LEFT JOIN stg_grid_intensity gm ON gm.zone = f.zone AND gm.hour_utc = f.hour_utc AND gm.signal = 'marginal'
  LEFT JOIN _site_month_market mk ON mk.site = f.site
  LEFT JOIN _site_month_scope1 s1 ON s1.site = f.site
  LEFT JOIN _site_hour_cfe c ON c.site = f.site AND c.hour_utc = f.hour_utc
  LEFT JOIN _embodied_gpu eg ON eg.gpu_model = f.gpu_model
  LEFT JOIN _embodied_node en ON en.node = f.node;
