-- The source's watermark only moves forward: re-running an old range never moves it back.
INSERT INTO ingest_watermark VALUES ($source, $watermark, now())
ON CONFLICT (source) DO UPDATE SET
    watermark_utc = greatest(ingest_watermark.watermark_utc, excluded.watermark_utc),
    updated_at = excluded.updated_at;
