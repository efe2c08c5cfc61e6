-- 004: the per-phase figures of the inference rollups (prefill vs decode), as a view so they can
-- never disagree with the sums they are computed from. Energy per token is GPU (IT) energy as the
-- exporter attributes it to the phase (catalog inference_phase_energy_joules / inference_tokens);
-- the facility figure applies the same site-hour PUE as everything else (in facts.sql, once).
-- The idle phase has energy but no tokens: its per-token figures are NULL, never infinite.
CREATE VIEW rollup_inference_per_token AS
SELECT period, period_start, engine, model, phase, it_kwh, facility_kwh, scope2_location_g, tokens,
       it_kwh * 3600000.0 / nullif(tokens, 0) AS it_joules_per_token,
       facility_kwh * 3600000.0 / nullif(tokens, 0) AS facility_joules_per_token,
       scope2_location_g / nullif(tokens / 1000.0, 0) AS scope2_location_g_per_1k_tokens
  FROM rollup_inference;
