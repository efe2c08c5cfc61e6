-- Disclosure of a served model: its inference-phase facts (a subset of GPU energy), with its share of
-- the node-hour's other figures in proportion to facility energy (market-based Scope 2, Scope 1,
-- Scope 3, water, CFE) and of its measured share in proportion to the node-hour's GPU energy.
-- Params: $start, $end (naive UTC); label globs $model, $engine, $cluster, $node, $site (NULL = any).
CREATE OR REPLACE TEMP TABLE _disclosure_rows AS
WITH sel AS (
    SELECT * FROM fact_inference_hour
     WHERE hour_utc >= $start AND hour_utc < $end
       AND ($model IS NULL OR model GLOB $model)
       AND ($engine IS NULL OR engine GLOB $engine)
       AND ($cluster IS NULL OR cluster GLOB $cluster)
       AND ($node IS NULL OR node GLOB $node)
       AND ($site IS NULL OR site GLOB $site)
), node_hour AS (
    SELECT d.hour_utc, d.node,
           sum(d.facility_kwh) AS facility_kwh,
           sum(d.it_kwh) FILTER (WHERE d.component = 'gpu') AS gpu_kwh,
           sum(d.it_kwh) FILTER (WHERE d.component = 'gpu' AND d.method = 'measured') AS gpu_measured_kwh,
           any_value(d.pue_source) AS pue_source,
           sum(d.scope1_g) AS scope1_g, sum(d.scope2_market_g) AS scope2_market_g,
           sum(d.scope3_embodied_g) AS scope3_embodied_g, sum(d.scope3_upstream_g) AS scope3_upstream_g,
           sum(d.water_onsite_l) AS water_onsite_l, sum(d.water_offsite_l) AS water_offsite_l,
           sum(d.cfe_kwh) AS cfe_kwh, bool_or(d.intensity_filled) AS intensity_filled,
           bool_or(d.residual_mix_missing) AS residual_mix_missing
      FROM fact_device_hour d JOIN (SELECT DISTINCT hour_utc, node FROM sel) k
        ON k.hour_utc = d.hour_utc AND k.node = d.node
     GROUP BY d.hour_utc, d.node
)
SELECT s.hour_utc, s.site, s.zone, s.node, s.it_kwh,
       s.it_kwh * coalesce(n.gpu_measured_kwh, 0) / nullif(n.gpu_kwh, 0) AS it_kwh_measured,
       s.facility_kwh, coalesce(n.pue_source, 'default') AS pue_source,
       n.scope1_g * s.facility_kwh / nullif(n.facility_kwh, 0) AS scope1_g,
       s.scope2_location_g,
       n.scope2_market_g * s.facility_kwh / nullif(n.facility_kwh, 0) AS scope2_market_g,
       n.scope3_embodied_g * s.facility_kwh / nullif(n.facility_kwh, 0) AS scope3_embodied_g,
       n.scope3_upstream_g * s.facility_kwh / nullif(n.facility_kwh, 0) AS scope3_upstream_g,
       n.water_onsite_l * s.facility_kwh / nullif(n.facility_kwh, 0) AS water_onsite_l,
       n.water_offsite_l * s.facility_kwh / nullif(n.facility_kwh, 0) AS water_offsite_l,
       n.cfe_kwh * s.facility_kwh / nullif(n.facility_kwh, 0) AS cfe_kwh,
       0.0 AS gpu_hours, s.tokens,
       coalesce(n.intensity_filled, false) AS intensity_filled,
       s.scope2_location_g IS NULL AS intensity_missing,
       s.site IS NULL AS site_unmapped,
       coalesce(n.residual_mix_missing, false) AS residual_mix_missing,
       n.node IS NULL OR coalesce(n.facility_kwh, 0) = 0 AS unallocated
  FROM sel s LEFT JOIN node_hour n ON n.hour_utc = s.hour_utc AND n.node = s.node;
