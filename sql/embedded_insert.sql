-- Embedded mode: store one scrape's kept counter samples in a single statement.
-- Parameters are parallel lists (one element per sample); far faster than a row-at-a-time insert.
INSERT INTO emb_sample (ts, target, metric, labels, value)
SELECT $ts, unnest($targets), unnest($metrics), unnest($labels), unnest($values);
