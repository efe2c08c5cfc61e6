-- The window's bookkeeping: which hour of which source was written, with how many rows, and when.
INSERT OR REPLACE INTO ingest_window VALUES ($source, $hour, $rows, now());
