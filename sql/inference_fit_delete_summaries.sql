-- aggregator/inference_fit: re-running the same window replaces its fit summaries (other windows stay:
-- they are the history of earlier runs; the report takes the latest per engine).
DELETE FROM inference_token_fit WHERE source = $source AND window_start = $start AND window_end = $end;
