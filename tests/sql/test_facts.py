"""The facts layer against its Python twins: PUE precedence and the formula macros agree on random inputs."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattfleet import sql
from wattfleet.aggregator.planning import estimators
from wattfleet.aggregator.store.connection import open_store
from wattfleet.aggregator.store.rebuild import fact_steps, month_steps, slice_steps

T0 = datetime(2026, 3, 1)
HOURS = 6

meters = st.lists(st.tuples(st.integers(0, HOURS - 1), st.sampled_from([1, 2, 3, 24]),
                            st.floats(1.0, 3.0), st.floats(0.5, 500.0)), max_size=5)


def _site(default_pue: float, rows: list[tuple[int, int, float, float]]) -> SimpleNamespace:
    return SimpleNamespace(pue=default_pue, pue_meter=tuple(
        SimpleNamespace(start=T0 + timedelta(hours=s), end=T0 + timedelta(hours=s + n), total_kwh=r * it, it_kwh=it)
        for s, n, r, it in rows))


@pytest.fixture(scope="module")
def con():
    c = open_store(":memory:")
    yield c
    c.close()


@settings(max_examples=60, deadline=None)
@given(default_pue=st.floats(1.0, 2.0), rows=meters)
def test_facts_pue_step_and_site_pue_at_agree(con, default_pue, rows):
    """sql/facts/030_site_hour_pue.sql and estimators.site_pue_at: same PUE and basis for every hour."""
    # Distinct period lengths only: among equally short covering periods the SQL's arg_min may pick any.
    lengths = [n for _, n, _, _ in rows]
    rows = [r for r in rows if lengths.count(r[1]) == 1]
    site = _site(default_pue, rows)
    con.execute("DELETE FROM dim_site_pue")
    con.execute("DELETE FROM dim_site")
    con.execute("INSERT INTO dim_site VALUES ('s', 'Z', ?, 0, NULL, NULL, 0, 0, 0, NULL)", [default_pue])
    for m in site.pue_meter:
        con.execute("INSERT INTO dim_site_pue VALUES ('s', ?, ?, ?, ?)", [m.start, m.end, m.total_kwh, m.it_kwh])
    con.execute("CREATE OR REPLACE TEMP TABLE _energy AS SELECT 's' AS site, T0 + INTERVAL (h) HOUR AS hour_utc "
                "FROM (SELECT ?::TIMESTAMP AS T0), range(?) t(h)", [T0, HOURS])
    con.execute(sql.load("facts/030_site_hour_pue.sql"))
    got = {h: (p, b) for h, p, b in con.execute("SELECT hour_utc, pue, pue_source FROM _site_hour").fetchall()}
    for h in range(HOURS):
        hour = T0 + timedelta(hours=h)
        want_pue, want_basis = estimators.site_pue_at(site, hour)
        assert got[hour][0] == pytest.approx(want_pue, rel=1e-12) and got[hour][1] == want_basis, hour


@settings(max_examples=60, deadline=None)
@given(it_kwh=st.floats(0.0, 1e6), pue=st.floats(1.0, 3.0), total=st.floats(1.0, 1e6), share=st.floats(0.01, 1.0))
def test_pue_macros_and_estimators_agree(con, it_kwh, pue, total, share):
    """facility_kwh() and pue_ratio() in sql/macros.sql are estimators.facility_kwh and pue_ratio."""
    sql_fac, sql_pue = con.execute("SELECT facility_kwh(?, ?), pue_ratio(?, ?)",
                                   [it_kwh, pue, total, total * share]).fetchone()
    assert sql_fac == pytest.approx(estimators.facility_kwh(it_kwh, pue), rel=1e-12)
    assert sql_pue == pytest.approx(estimators.pue_ratio(total, total * share), rel=1e-12)


def test_fact_steps_run_in_number_order_and_read_the_month_from_variables():
    month, sliced = month_steps(), slice_steps()
    assert fact_steps() == month + sliced
    assert month == sorted(month) and month[0] == "facts/000_clear_month.sql"
    assert sliced == ["facts/slice/040_device_hour.sql", "facts/slice/060_workload_hour.sql"]
    numbers = [s.rsplit("/", 1)[1][:3] for s in month + sliced]
    assert len(numbers) == len(set(numbers))  # no shared numbers
    for step in month + sliced:
        assert "build_window" not in sql.file_text(step)
    assert any("getvariable('month_start')" in sql.file_text(s) for s in month)
    assert all("getvariable('slice_start')" in sql.file_text(s) for s in sliced)


def test_an_hourly_reading_beats_a_monthly_one_listed_before_it():
    """The config order does not matter (Site.pue_at took the first listed meter; serve and shift used it)."""
    site = _site(1.5, [(0, 24, 1.3, 100.0), (2, 1, 1.1, 10.0)])
    assert estimators.site_pue_at(site, T0 + timedelta(hours=2)) == (pytest.approx(1.1), "meter_hour")
    assert estimators.site_pue_at(site, T0 + timedelta(hours=3)) == (pytest.approx(1.3), "meter_period")
    assert estimators.site_pue_at(site, T0 + timedelta(hours=30)) == (1.5, "default")
