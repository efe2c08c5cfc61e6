-- Facts of one month, step 080: embodied carbon per GPU model and node.
-- Month bounds: getvariable('month_start') and getvariable('month_end') (store/rebuild.py sets them).

-- Embodied carbon per device-hour (GPUs by model) and node-hour (overhead line), first match wins.
CREATE OR REPLACE TEMP TABLE _embodied_gpu AS
SELECT m.gpu_model, arg_min(embodied_share(d.kg_co2e * 1000.0, 1, d.life_years), d.ord) AS g_per_hour
  FROM (SELECT DISTINCT gpu_model FROM _fac WHERE component = 'gpu') m
  JOIN dim_embodied d ON d.gpu_model_glob IS NOT NULL AND m.gpu_model GLOB d.gpu_model_glob
 GROUP BY m.gpu_model;
CREATE OR REPLACE TEMP TABLE _embodied_node AS
SELECT n.node, arg_min(embodied_share(d.kg_co2e * 1000.0, 1, d.life_years), d.ord) AS g_per_hour
  FROM (SELECT DISTINCT node FROM _fac) n
  JOIN dim_embodied d ON d.node_glob IS NOT NULL AND n.node GLOB d.node_glob
 GROUP BY n.node;
