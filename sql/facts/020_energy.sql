-- Facts of one month, step 020: IT energy in kWh plus one overhead line per node and hour.
-- Month bounds: getvariable('month_start') and getvariable('month_end') (store/rebuild.py sets them).

-- Measured/estimated component energy of the month, in kWh, with its site.
CREATE OR REPLACE TEMP TABLE _energy AS
SELECT e.hour_utc, ns.site, e.cluster, e.node, e.device, e.component, e.domain, e.gpu_model,
       e.method, joules_to_kwh(e.joules) AS it_kwh
  FROM stg_energy_hourly e
  JOIN _node_site ns ON ns.node = e.node AND ns.site_label IS NOT DISTINCT FROM e.site_label
 WHERE e.hour_utc >= getvariable('month_start') AND e.hour_utc < getvariable('month_end');

-- One overhead line per node and hour: unmetered fans, NICs, PSU loss (estimated).
-- It always exists (possibly 0 kWh) so that node-level embodied carbon has a row to sit on.
INSERT INTO _energy
SELECT e.hour_utc, e.site, min(e.cluster), e.node, 'node', 'overhead', NULL, NULL, 'estimated',
       coalesce(any_value(s.overhead_ratio), 0) * exact_sum(e.it_kwh)
         + coalesce(any_value(s.overhead_watts_per_node), 0) / 1000.0
  FROM _energy e LEFT JOIN dim_site s ON s.site = e.site
 GROUP BY e.hour_utc, e.site, e.node;
