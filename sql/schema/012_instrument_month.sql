-- 012: market-based instruments as applied, per month, site and instrument (facts step 035 writes them).
-- The month's share of each instrument's volume (spread evenly over its period's hours; a market
-- instrument shared by the zone's sites in proportion to their consumption) and the part applied after
-- the cap at the site-month's consumption. fact_device_hour's market-based Scope 2 is computed from these
-- rows, and the report shows them (instruments, vintage, coverage), so both read one allocation.

CREATE TABLE fact_instrument_month (
    month DATE NOT NULL, site VARCHAR NOT NULL, zone VARCHAR, instrument VARCHAR NOT NULL, type VARCHAR NOT NULL,
    claimed_for VARCHAR NOT NULL,            -- 'site' or 'market <zone>'
    vintage_start_utc TIMESTAMP NOT NULL,    -- the instrument's period [start, end): when its energy was generated
    vintage_end_utc TIMESTAMP NOT NULL,
    grams_per_kwh DOUBLE NOT NULL,           -- the instrument's emission factor
    allocated_kwh DOUBLE NOT NULL,           -- its volume in the month allocated to the site
    applied_kwh DOUBLE NOT NULL,             -- allocated_kwh after the cap at the site-month's consumption
    site_consumption_kwh DOUBLE NOT NULL,    -- the site-month's facility energy
    PRIMARY KEY (month, site, instrument)
);
