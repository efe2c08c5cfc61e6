"""The ingest run's summary: fleet totals from the facts, for every month or one."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from fixtures.agg.pipeline import NOW, STATIC_SITE, T0, put_gpu, write_config
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.ingest.embedded import EmbeddedSource
from wattfleet.aggregator.ingest.run import ingest, totals
from wattfleet.aggregator.store.connection import open_store


def test_totals_of_every_month_and_of_one(tmp_path):
    con = open_store(":memory:")
    put_gpu(con, "a-1", T0, 2, 1000)
    ingest(con, load_facility(write_config(tmp_path, STATIC_SITE)), EmbeddedSource(con), T0, T0 + timedelta(hours=2),
           now=NOW)
    every = totals(con)
    assert every["it_kwh"] == pytest.approx(2.0) and every["rows"] > 0
    assert totals(con, date(T0.year, T0.month, 1)) == every
    assert totals(con, date(T0.year + 1, T0.month, 1))["rows"] == 0.0
    assert list(every) == ["it_kwh", "facility_kwh", "scope1_g", "scope2_location_g", "scope2_market_g",
                           "scope3_embodied_g", "scope3_upstream_g", "water_onsite_l", "water_offsite_l", "cfe_kwh",
                           "rows"]
