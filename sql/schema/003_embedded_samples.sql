-- 003: raw counter samples for embedded mode (no Prometheus: wattfleet scrapes exporters itself).

CREATE TABLE emb_sample (
    ts      TIMESTAMP NOT NULL,   -- scrape time, UTC
    target  VARCHAR   NOT NULL,   -- host:port scraped
    metric  VARCHAR   NOT NULL,   -- catalog family name
    labels  VARCHAR   NOT NULL,   -- JSON object, keys sorted: one series per (target, metric, labels)
    value   DOUBLE    NOT NULL
);
