-- Synthetic month of facts for bench/rollup_bench.py: $gpus GPUs (8 per node, 4 sites, 8 clusters,
-- 10 teams, 25 namespaces, two GPU models) x $hours hours from 2026-10-01, with the derived
-- columns the real facts carry (facility = IT x PUE once, Scope 2 from an hourly intensity).
-- bench/rollup_bench_workloads.sql then adds their workload facts.
INSERT INTO fact_device_hour BY NAME
WITH g AS (
    SELECT g, h, 0.3 + (hash(g, h) % 1000) / 4000.0 AS it_kwh, 1.1 + (g // 2500) * 0.1 AS pue,
           200 + 150 * sin(h / 24.0 * 6.2832) + (g // 2500) * 40 AS intensity
      FROM range(0, CAST($gpus AS BIGINT)) t(g), range(0, CAST($hours AS BIGINT)) u(h)
)
SELECT TIMESTAMP '2026-10-01' + to_hours(h) AS hour_utc,
       'site' || (g * 4 // $gpus) AS site, 'Z' || (g * 4 // $gpus) AS zone,
       'cluster' || (g * 8 // $gpus) AS cluster, 'node' || lpad(CAST(g // 8 AS VARCHAR), 5, '0') AS node,
       CAST(g % 8 AS VARCHAR) AS device, 'gpu' AS component, 'gpu' AS domain,
       CASE WHEN g % 3 = 0 THEN 'NVIDIA A100-SXM4-80GB' ELSE 'NVIDIA H100 80GB HBM3' END AS gpu_model,
       'measured' AS method,
       it_kwh, pue, 'default' AS pue_source, it_kwh * pue AS facility_kwh, intensity AS grams_per_kwh,
       h % 97 = 0 AS intensity_filled, false AS intensity_missing, false AS site_unmapped,
       false AS residual_mix_missing,
       it_kwh * pue * intensity AS scope2_location_g, it_kwh * pue * 0.6 * 410 AS scope2_market_g,
       it_kwh * pue * 12.5 AS scope1_g, 164000.0 / (4 * 8760) AS scope3_embodied_g,
       it_kwh * pue * 35 AS scope3_upstream_g, it_kwh * 1.8 AS water_onsite_l, it_kwh * pue * 3.1 AS water_offsite_l,
       it_kwh * pue * 0.45 AS cfe_kwh, NULL AS marginal_grams_per_kwh
  FROM g;
