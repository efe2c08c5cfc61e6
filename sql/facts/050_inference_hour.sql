-- Facts of one month, step 050: the inference-phase facts.
-- Month bounds: getvariable('month_start') and getvariable('month_end') (store/rebuild.py sets them).

-- Inference phases: GPU energy attributed to prefill/decode (a subset of GPU energy, never added to it),
-- taken to facility level with the same site-hour PUE and intensity as everything else.
INSERT INTO fact_inference_hour BY NAME
SELECT i.hour_utc, ns.site, sh.zone, i.cluster, i.node, i.engine, i.model, i.phase,
       joules_to_kwh(i.energy_joules) AS it_kwh,
       facility_kwh(joules_to_kwh(i.energy_joules), coalesce(sh.pue, s.pue_default)) AS facility_kwh,
       scope2_location_g(facility_kwh(joules_to_kwh(i.energy_joules), coalesce(sh.pue, s.pue_default)),
                         g.grams_per_kwh) AS scope2_location_g,
       i.tokens
  FROM stg_inference_hourly i
  JOIN (SELECT getvariable('month_start') AS month_start, getvariable('month_end') AS month_end) w
    ON i.hour_utc >= w.month_start AND i.hour_utc < w.month_end
  JOIN _node_site ns ON ns.node = i.node AND ns.site_label IS NOT DISTINCT FROM i.site_label
  LEFT JOIN dim_site s ON s.site = ns.site
  LEFT JOIN _site_hour sh ON sh.site = ns.site AND sh.hour_utc = i.hour_utc
  LEFT JOIN stg_grid_intensity g ON g.zone = s.zone AND g.hour_utc = i.hour_utc AND g.signal = 'average';
