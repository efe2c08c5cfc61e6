-- Embedded mode (aggregator/ingest/embedded.py): scraped counter samples are stored, then read
-- back as hourly energy (and hourly rejected or failed readings) like any other telemetry source.

-- name: insert_samples
-- Embedded mode: store one scrape's kept counter samples in a single statement.
-- Parameters are parallel lists (one element per sample); far faster than a row-at-a-time insert.
INSERT INTO emb_sample (ts, target, metric, labels, value)
SELECT $ts, unnest($targets), unnest($metrics), unnest($labels), unnest($values);

-- name: hourly_increase
-- Hourly increase of every embedded-mode counter series over [$start, $end): energy, inference and
-- collector errors alike (embedded.KEPT says which families are stored).
-- Counter resets (exporter restart: value drops) count the new value from 0; a delta whose two
-- samples straddle an hour boundary is split between the hours in proportion to time.
WITH s AS (
    SELECT target, metric, labels, ts, value,
           lag(ts) OVER w AS prev_ts, lag(value) OVER w AS prev_value
      FROM emb_sample
     WHERE ts >= CAST($start AS TIMESTAMP) - INTERVAL 1 HOUR AND ts <= CAST($end AS TIMESTAMP) + INTERVAL 1 HOUR
    WINDOW w AS (PARTITION BY target, metric, labels ORDER BY ts)
), d AS (
    SELECT target, metric, labels, prev_ts, ts,
           CASE WHEN value >= prev_value THEN value - prev_value ELSE value END AS delta
      FROM s
     WHERE prev_ts IS NOT NULL AND ts > prev_ts
), split AS (
    SELECT d.target, d.metric, d.labels, h.hour_utc,
           d.delta * (epoch(least(d.ts, h.hour_utc + INTERVAL 1 HOUR)) - epoch(greatest(d.prev_ts, h.hour_utc)))
                   / (epoch(d.ts) - epoch(d.prev_ts)) AS part
      FROM d
     CROSS JOIN LATERAL (SELECT unnest(range(date_trunc('hour', d.prev_ts), d.ts, INTERVAL 1 HOUR)) AS hour_utc) h
)
SELECT hour_utc, metric, labels, max(part_sum) AS increase
  FROM (SELECT hour_utc, target, metric, labels, sum(part) AS part_sum FROM split
         WHERE hour_utc >= CAST($start AS TIMESTAMP) AND hour_utc < CAST($end AS TIMESTAMP)
         GROUP BY ALL)
 GROUP BY hour_utc, metric, labels  -- the same series from two targets (scraped twice) counts once
 ORDER BY hour_utc, metric, labels;

-- name: prune
-- Samples older than $before are no longer needed: the file stays small.
DELETE FROM emb_sample WHERE ts < $before;

-- name: fit_samples
-- Raw samples the embedded token fit pairs into intervals (aggregator/inference/embedded_inputs.py): GPU
-- energy, the engines' GPU mapping, tokens by phase, prompt tokens and phase energy, in [$start, $end].
SELECT ts, metric, labels, value FROM emb_sample
 WHERE ts >= $start AND ts <= $end AND list_contains($metrics, metric)
 ORDER BY ts;
