-- 008: what the GHG inventory and the report's methodology need from the facility config.
-- dim_embodied_acquisition: units of an embodied entry (dim_embodied.ord) acquired on a day, optionally
-- for a site; GHG Protocol Scope 3 Category 2 reports their full cradle-to-gate emissions in the
-- reporting period of the acquisition date (the amortized view in the facts is unchanged).
-- dim_site.residual_mix_source: where a site's residual-mix factor comes from (shown next to it).
-- dim_config: the config file the dimensions were loaded from and its SHA-256 (the config version).

CREATE TABLE dim_embodied_acquisition (
    ord INTEGER NOT NULL, acquired DATE NOT NULL, units BIGINT NOT NULL CHECK (units > 0), site VARCHAR
);
ALTER TABLE dim_site ADD COLUMN residual_mix_source VARCHAR;
CREATE TABLE dim_config (path VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, loaded_at TIMESTAMP NOT NULL);
