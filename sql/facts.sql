-- Rebuild the facts of one month from staging and the facility dimensions.
-- Input: TEMP TABLE build_window(month_start TIMESTAMP, month_end TIMESTAMP), one row.
-- Runs inside the caller's transaction: the month's facts are replaced all at once.
-- The chain follows DOMAIN.md, each step once: IT -> facility (x PUE) -> Scope 2 / water / Scope 3.

DELETE FROM fact_device_hour
 WHERE hour_utc >= (SELECT month_start FROM build_window) AND hour_utc < (SELECT month_end FROM build_window);
DELETE FROM fact_inference_hour
 WHERE hour_utc >= (SELECT month_start FROM build_window) AND hour_utc < (SELECT month_end FROM build_window);

-- Node -> site: config globs first (file order), else the exporter's site label if it names a site.
CREATE OR REPLACE TEMP TABLE _node_site AS
WITH nodes AS (
    SELECT DISTINCT node, site_label FROM stg_energy_hourly, build_window w
     WHERE hour_utc >= w.month_start AND hour_utc < w.month_end
    UNION
    SELECT DISTINCT node, site_label FROM stg_inference_hourly, build_window w
     WHERE hour_utc >= w.month_start AND hour_utc < w.month_end
), by_glob AS (
    SELECT n.node, n.site_label, arg_min(p.site, p.ord) AS site
      FROM nodes n JOIN dim_node_pattern p ON n.node GLOB p.pattern
     GROUP BY n.node, n.site_label
)
SELECT n.node, n.site_label, coalesce(g.site, s.site) AS site
  FROM nodes n
  LEFT JOIN by_glob g ON g.node = n.node AND g.site_label IS NOT DISTINCT FROM n.site_label
  LEFT JOIN dim_site s ON s.site = n.site_label;

-- Measured/estimated component energy of the month, in kWh, with its site.
CREATE OR REPLACE TEMP TABLE _energy AS
SELECT e.hour_utc, ns.site, e.cluster, e.node, e.device, e.component, e.domain, e.gpu_model,
       e.namespace, e.team, e.method, joules_to_kwh(e.joules) AS it_kwh
  FROM stg_energy_hourly e
  JOIN build_window w ON e.hour_utc >= w.month_start AND e.hour_utc < w.month_end
  JOIN _node_site ns ON ns.node = e.node AND ns.site_label IS NOT DISTINCT FROM e.site_label;

-- One overhead line per node and hour: unmetered fans, NICs, PSU loss (estimated).
-- It always exists (possibly 0 kWh) so that node-level embodied carbon has a row to sit on.
INSERT INTO _energy
SELECT e.hour_utc, e.site, any_value(e.cluster), e.node, 'node', 'overhead', NULL, NULL, NULL, NULL,
       'estimated',
       coalesce(any_value(s.overhead_ratio), 0) * sum(e.it_kwh)
         + coalesce(any_value(s.overhead_watts_per_node), 0) / 1000.0
  FROM _energy e LEFT JOIN dim_site s ON s.site = e.site
 GROUP BY e.hour_utc, e.site, e.node;

-- PUE per site and hour: an hourly meter reading, else a monthly one, else the configured constant.
CREATE OR REPLACE TEMP TABLE _site_hour AS
WITH sh AS (SELECT DISTINCT site, hour_utc FROM _energy WHERE site IS NOT NULL),
metered AS (
    SELECT sh.site, sh.hour_utc,
           arg_min(pue_ratio(m.total_kwh, m.it_kwh), m.end_utc - m.start_utc) AS pue,
           arg_min(CASE WHEN m.end_utc - m.start_utc <= INTERVAL 1 HOUR THEN 'meter_hour' ELSE 'meter_period' END,
                   m.end_utc - m.start_utc) AS pue_source
      FROM sh JOIN dim_site_pue m ON m.site = sh.site AND sh.hour_utc >= m.start_utc AND sh.hour_utc < m.end_utc
     GROUP BY sh.site, sh.hour_utc
)
SELECT sh.site, sh.hour_utc, s.zone,
       coalesce(m.pue, s.pue_default) AS pue, coalesce(m.pue_source, 'default') AS pue_source
  FROM sh JOIN dim_site s ON s.site = sh.site
  LEFT JOIN metered m ON m.site = sh.site AND m.hour_utc = sh.hour_utc;

-- Facility energy: the one and only place PUE is applied.
CREATE OR REPLACE TEMP TABLE _fac AS
SELECT e.*, sh.zone, sh.pue, sh.pue_source,
       CASE WHEN sh.pue IS NULL THEN NULL ELSE facility_kwh(e.it_kwh, sh.pue) END AS facility_kwh
  FROM _energy e LEFT JOIN _site_hour sh ON sh.site = e.site AND sh.hour_utc = e.hour_utc;

-- Site-hour and zone-hour consumption (facility level).
CREATE OR REPLACE TEMP TABLE _site_hour_kwh AS
SELECT site, zone, hour_utc, sum(facility_kwh) AS kwh FROM _fac WHERE site IS NOT NULL GROUP BY ALL;
CREATE OR REPLACE TEMP TABLE _zone_hour_kwh AS
SELECT zone, hour_utc, sum(kwh) AS kwh FROM _site_hour_kwh GROUP BY ALL;

-- Instruments: volume spread evenly over the hours of their period.
CREATE OR REPLACE TEMP TABLE _inst AS
SELECT i.*, i.mwh * 1000.0 * 3600.0 / (epoch(i.end_utc) - epoch(i.start_utc)) AS kwh_per_hour,
       greatest(0.0, (epoch(least(i.end_utc, w.month_end)) - epoch(greatest(i.start_utc, w.month_start))) / 3600.0)
         AS hours_in_month
  FROM dim_instrument i, build_window w;

-- Market-based coverage per site and month: site instruments plus a consumption-weighted share
-- of the market's (zone's) instruments, matched against the month's consumption.
CREATE OR REPLACE TEMP TABLE _site_month_market AS
WITH site_cons AS (SELECT site, zone, sum(kwh) AS kwh FROM _site_hour_kwh GROUP BY ALL),
zone_cons AS (SELECT zone, sum(kwh) AS kwh FROM site_cons GROUP BY ALL),
site_inst AS (SELECT site, sum(kwh_per_hour * hours_in_month) AS kwh,
                     sum(kwh_per_hour * hours_in_month * grams_per_kwh) AS g
                FROM _inst WHERE site IS NOT NULL GROUP BY ALL),
mkt_inst AS (SELECT market AS zone, sum(kwh_per_hour * hours_in_month) AS kwh,
                    sum(kwh_per_hour * hours_in_month * grams_per_kwh) AS g
               FROM _inst WHERE market IS NOT NULL GROUP BY ALL),
avail AS (
    SELECT sc.site, sc.kwh AS cons,
           coalesce(si.kwh, 0) + coalesce(mi.kwh * sc.kwh / nullif(zc.kwh, 0), 0) AS inst_kwh,
           coalesce(si.g, 0) + coalesce(mi.g * sc.kwh / nullif(zc.kwh, 0), 0) AS inst_g
      FROM site_cons sc JOIN zone_cons zc ON zc.zone = sc.zone
      LEFT JOIN site_inst si ON si.site = sc.site LEFT JOIN mkt_inst mi ON mi.zone = sc.zone
)
SELECT site,
       CASE WHEN cons > 0 THEN least(cons, inst_kwh) / cons ELSE 0 END AS covered_ratio,
       CASE WHEN inst_kwh > 0 THEN inst_g / inst_kwh ELSE 0 END AS instrument_grams_per_kwh
  FROM avail;

-- Hourly CFE per site: hourly-matched instrument supply (PPAs) plus the grid's carbon-free share
-- of the rest of the hour's consumption.
CREATE OR REPLACE TEMP TABLE _site_hour_cfe AS
WITH ppa AS (
    SELECT sh.site, sh.hour_utc,
           sum(CASE WHEN i.site = sh.site THEN i.kwh_per_hour
                    ELSE i.kwh_per_hour * sh.kwh / nullif(zh.kwh, 0) END) AS kwh
      FROM _site_hour_kwh sh JOIN _zone_hour_kwh zh ON zh.zone = sh.zone AND zh.hour_utc = sh.hour_utc
      JOIN _inst i ON i.hourly_matched AND (i.site = sh.site OR i.market = sh.zone)
                  AND sh.hour_utc >= i.start_utc AND sh.hour_utc < i.end_utc
     GROUP BY sh.site, sh.hour_utc
)
SELECT sh.site, sh.hour_utc,
       cfe_score(sh.kwh, coalesce(p.kwh, 0) + coalesce(g.cfe_ratio, 0) * greatest(sh.kwh - coalesce(p.kwh, 0), 0))
         AS cfe_ratio
  FROM _site_hour_kwh sh
  LEFT JOIN ppa p ON p.site = sh.site AND p.hour_utc = sh.hour_utc
  LEFT JOIN stg_grid_intensity g ON g.zone = sh.zone AND g.hour_utc = sh.hour_utc AND g.signal = 'average';

-- Scope 1 per site and month (kg -> g), shared by facility energy.
CREATE OR REPLACE TEMP TABLE _site_month_scope1 AS
WITH s1 AS (
    SELECT d.site, sum(CASE WHEN d.kind = 'diesel' THEN scope1_diesel_kg(d.quantity, d.kg_co2e_per_unit)
                            ELSE scope1_refrigerant_kg(d.quantity, d.kg_co2e_per_unit) END) * 1000.0 AS g
      FROM dim_scope1 d, build_window w WHERE d.month = CAST(w.month_start AS DATE) GROUP BY d.site
)
SELECT s1.site, s1.g, sum(sh.kwh) AS kwh FROM s1 JOIN _site_hour_kwh sh ON sh.site = s1.site
 GROUP BY s1.site, s1.g;

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
  JOIN build_window w ON i.hour_utc >= w.month_start AND i.hour_utc < w.month_end
  JOIN _node_site ns ON ns.node = i.node AND ns.site_label IS NOT DISTINCT FROM i.site_label
  LEFT JOIN dim_site s ON s.site = ns.site
  LEFT JOIN _site_hour sh ON sh.site = ns.site AND sh.hour_utc = i.hour_utc
  LEFT JOIN stg_grid_intensity g ON g.zone = s.zone AND g.hour_utc = i.hour_utc AND g.signal = 'average';
