"""The ingest run's summary: fleet totals from the facts, for every month or one."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from fixtures.agg.pipeline import NOW, STATIC_SITE, T0, put_gpu, write_config
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.ingest.embedded import EmbeddedSource
from wattfleet.aggregator.ingest.run import IngestRangeError, ingest, totals
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


def test_a_range_ending_before_its_start_is_refused_naming_its_bounds(tmp_path):
    """No watermark, no start and an end long before "a week back": once "ingested 0 hour(s)" with exit 0."""
    cfg = load_facility(write_config(tmp_path, STATIC_SITE))
    con = open_store(":memory:")
    put_gpu(con, "a-1", T0, 2, 1000)
    with pytest.raises(IngestRangeError, match=r"starts at 2022-02-21T23:00Z \(no watermark for source 'embedded' "
                                               r"yet, so 168 hours before the last complete hour\), after its end "
                                               r"2022-01-02T02:00Z \(--to\); pass --from"):
        ingest(con, cfg, EmbeddedSource(con), None, T0 + timedelta(hours=2), now=NOW)
    assert con.execute("SELECT count(*) FROM ingest_window").fetchone() == (0,)
    with pytest.raises(IngestRangeError, match=r"starts at 2022-01-02T03:00Z \(--from\)"):
        ingest(con, cfg, EmbeddedSource(con), T0 + timedelta(hours=3), T0 + timedelta(hours=2), now=NOW)
    ingest(con, cfg, EmbeddedSource(con), T0, T0 + timedelta(hours=2), now=NOW)
    with pytest.raises(IngestRangeError, match=r"the watermark of source 'embedded' 2022-01-02T02:00Z less "
                                               r"--lookback-hours 0\), after its end 2022-01-02T01:00Z"):
        ingest(con, cfg, EmbeddedSource(con), None, T0 + timedelta(hours=1), lookback_hours=0, now=NOW)
    # an empty range is not inverted: nothing new since the watermark is a normal run
    assert ingest(con, cfg, EmbeddedSource(con), None, T0 + timedelta(hours=2), lookback_hours=0,
                  now=NOW).windows == 0
    assert totals(con)["it_kwh"] == pytest.approx(2.0)


def test_aggregate_cli_refuses_an_inverted_range_as_a_usage_error(tmp_path, capsys):
    from wattfleet.cli import main
    db = tmp_path / "wf.duckdb"
    # --prometheus on a closed port: the refusal comes before any request
    assert main(["aggregate", "--config", str(write_config(tmp_path, STATIC_SITE)), "--db", str(db),
                 "--prometheus", "http://127.0.0.1:9", "--to", "2022-07-01T07:00Z", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "wattfleet: nothing to ingest: the range starts at" in err and "no watermark for source 'prometheus'" in err
    assert "after its end 2022-07-01T07:00Z (--to); pass --from" in err and "Traceback" not in err
