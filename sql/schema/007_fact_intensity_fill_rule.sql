-- 007: which gap rule filled a fact's grid intensity (numbered after 006, added in parallel on another branch).
-- intensity_filled said that the hour's average intensity was not observed; intensity_fill_rule says
-- which named rule of aggregator/grid (gaps) or ingest (replay) supplied it, so the report's data
-- quality can say which rule filled which hours. NULL where the hour was observed (or is missing).
-- Facts built before this migration keep NULL until their month is rebuilt.

ALTER TABLE fact_device_hour ADD COLUMN intensity_fill_rule VARCHAR;
