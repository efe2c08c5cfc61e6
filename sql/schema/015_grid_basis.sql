-- 015: what each stored grid hour's intensity counts (docs/accounting.md 5.5), beside stg_grid_intensity.
-- basis: 'direct' (generation/combustion, the GHG Protocol's Scope 2 basis) or 'lifecycle' (adds the
-- upstream of fuels and plants). upstream_grams_per_kwh: the upstream part a source's life-cycle value
-- was split into from the hour's generation mix (aggregator/grid, module basis); grams_per_kwh in
-- stg_grid_intensity is then the direct part, and the facts put this part in Scope 3 Category 3 instead
-- of the site's flat upstream factor. An hour with no row here (written before 015, or by hand) keeps
-- the flat factor, as before. Replaced with the zone's intensity rows on every grid load.

CREATE TABLE stg_grid_basis (
    zone                   VARCHAR   NOT NULL,
    hour_utc               TIMESTAMP NOT NULL,
    signal                 VARCHAR   NOT NULL,
    basis                  VARCHAR   NOT NULL CHECK (basis IN ('direct', 'lifecycle')),
    upstream_grams_per_kwh DOUBLE    CHECK (upstream_grams_per_kwh >= 0),
    PRIMARY KEY (zone, hour_utc, signal)
);

-- The basis of the intensity a fact's location-based Scope 2 used (NULL: not stated, before 015).
ALTER TABLE fact_device_hour ADD COLUMN intensity_basis VARCHAR;
