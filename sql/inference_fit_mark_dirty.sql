-- aggregator/inference_fit: the months of a re-fitted window are rebuilt at the end of the run.
INSERT OR IGNORE INTO dirty_month VALUES ($month);
