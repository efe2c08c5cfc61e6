-- 011: how each engine's phase energy was attributed, per hour (issue 14): the exporter's
-- wattfleet_inference_phase_attribution_info{method, chunked_prefill, assumption}, as text such as
-- "phase_time: mixed_forward_as_prefill (chunked prefill true)" (TGI with chunked prefill: a prefill forward
-- also decodes the running batch, all of its time counted as prefill). NULL where the exporter publishes none.
ALTER TABLE stg_inference_engine_hourly ADD COLUMN attribution VARCHAR;
