-- Totals of the rows selected by select_device.sql or select_inference.sql. Energies kWh, emissions g, water L.
SELECT count(*) AS rows, sum(it_kwh), sum(it_kwh_measured), sum(facility_kwh), sum(scope1_g),
       sum(scope2_location_g), sum(scope2_market_g), sum(scope3_embodied_g), sum(scope3_upstream_g),
       sum(water_onsite_l), sum(water_offsite_l), sum(cfe_kwh), sum(gpu_hours), sum(tokens),
       sum(facility_kwh) FILTER (WHERE intensity_filled),
       count(*) FILTER (WHERE intensity_missing), count(*) FILTER (WHERE site_unmapped),
       count(*) FILTER (WHERE residual_mix_missing), count(*) FILTER (WHERE unallocated),
       min(hour_utc), max(hour_utc)
  FROM _disclosure_rows;
