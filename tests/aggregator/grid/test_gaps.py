"""Gap detection and the named fill rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattfleet.aggregator.grid import GridDataError, IntensityRow, Signal, fill_gaps, find_missing, parse_chain

UTC = timezone.utc
T0 = datetime(2024, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)


def series(values: dict[int, float], zone: str = "FR", signal: Signal = "average") -> list[IntensityRow]:
    return [IntensityRow(zone=zone, hour_utc=T0 + i * H, grams_per_kwh=v, signal=signal, source="test",
                         cfe_ratio=0.5) for i, v in values.items()]


def full(n: int, skip: frozenset[int] | set[int] = frozenset()) -> dict[int, float]:
    return {i: 100.0 + i for i in range(n) if i not in skip}


def test_find_missing() -> None:
    rows = series(full(10, {3, 7}))
    assert find_missing(rows, T0, T0 + 10 * H) == [T0 + 3 * H, T0 + 7 * H]


def test_previous_day_same_hour_is_default() -> None:
    rows = series(full(48, {30}))
    out, rep = fill_gaps(rows, T0 + 24 * H, T0 + 48 * H)
    row = out[6]
    assert row.hour_utc == T0 + 30 * H and row.filled and row.fill_rule == "previous_day_same_hour"
    assert row.grams_per_kwh == 106.0 and row.cfe_ratio == 0.5 and row.source == "test"
    assert rep.missing == [T0 + 30 * H] and rep.complete and rep.observed_hours == 23


def test_falls_through_when_previous_day_also_missing() -> None:
    rows = series(full(48, {6, 30}))
    out, rep = fill_gaps(rows, T0 + 24 * H, T0 + 48 * H, ["previous_day_same_hour", "linear"])
    f = rep.filled[0]
    assert (f.rule, f.grams_per_kwh) == ("linear", 130.0)
    assert f.fell_through == (f"previous_day_same_hour: no observed value at {(T0 + 6 * H).isoformat()}",)
    assert out[6].fill_rule == "linear"


def test_fills_never_feed_other_fills() -> None:
    # hours 1 and 25 missing: 25 may not be copied from the *filled* hour 1
    rows = series(full(48, {1, 25}))
    _, rep = fill_gaps(rows, T0, T0 + 48 * H, ["previous_day_same_hour", "none"])
    assert rep.unfilled == [T0 + 1 * H, T0 + 25 * H]
    assert rep.unfilled_reasons[T0 + 25 * H][-1] == "none: left missing as configured"


def test_linear_interpolates_value_and_cfe() -> None:
    rows = series({0: 100.0, 4: 200.0})
    rows[1] = IntensityRow("FR", T0 + 4 * H, 200.0, "average", "test", cfe_ratio=0.9)
    out, rep = fill_gaps(rows, T0, T0 + 5 * H, ["linear"])
    assert [r.grams_per_kwh for r in out] == [100.0, 125.0, 150.0, 175.0, 200.0]
    assert out[2].cfe_ratio == pytest.approx(0.7)
    assert rep.filled[1].basis == f"between observed {T0.isoformat()} and {(T0 + 4 * H).isoformat()}"


def test_linear_respects_max_gap_and_needs_both_sides() -> None:
    rows = series({0: 100.0, 5: 200.0})
    _, rep = fill_gaps(rows, T0, T0 + 6 * H, [{"rule": "linear", "max_gap_hours": 3}, "none"])
    assert len(rep.unfilled) == 4 and "exceeds max_gap_hours=3" in rep.unfilled_reasons[T0 + H][0]
    _, rep = fill_gaps(series({0: 1.0}), T0, T0 + 2 * H, ["linear", "none"])
    assert rep.unfilled_reasons[T0 + H][0] == "linear: no observed hour on both sides"


def test_linear_uses_neighbours_outside_the_window() -> None:
    rows = series({0: 100.0, 3: 130.0})
    out, _ = fill_gaps(rows, T0 + H, T0 + 3 * H, ["linear"])
    assert [r.grams_per_kwh for r in out] == [110.0, 120.0]


def test_static_annual_from_table_and_override() -> None:
    out, rep = fill_gaps(series({0: 60.0}), T0, T0 + 2 * H, ["static_annual"])
    assert out[1].grams_per_kwh == 50.0 and out[1].source == "static" and out[1].fill_rule == "static_annual"
    assert "France about 50" in rep.filled[0].basis
    out, _ = fill_gaps(series({0: 60.0}), T0, T0 + 2 * H, [{"rule": "static_annual", "grams_per_kwh": 55}])
    assert out[1].grams_per_kwh == 55.0


def test_static_annual_refuses_marginal_signal_and_unknown_zone() -> None:
    _, rep = fill_gaps(series({0: 900.0}, signal="marginal"), T0, T0 + 2 * H, ["static_annual", "none"])
    assert "signal is marginal" in rep.unfilled_reasons[T0 + H][0]
    _, rep = fill_gaps(series({0: 9.0}, zone="XX"), T0, T0 + 2 * H, ["static_annual", "none"])
    assert "no annual factor for zone 'XX'" in rep.unfilled_reasons[T0 + H][0]


def test_empty_rows_need_a_zone() -> None:
    out, rep = fill_gaps([], T0, T0 + 3 * H, ["static_annual"], zone="PL")
    assert [r.grams_per_kwh for r in out] == [820.0] * 3 and len(rep.filled) == 3
    with pytest.raises(GridDataError, match="no rows and no zone"):
        fill_gaps([], T0, T0 + H)


@pytest.mark.parametrize(
    ("chain", "text"),
    [
        (["nearest"], "unknown fill rule 'nearest'"),
        (["none", "linear"], "'none' must be the last"),
        ([{"rule": "linear", "max_gap": 3}], "unknown parameter(s) ['max_gap']"),
        ([{"rule": "linear", "max_gap_hours": 0}], "must be an integer >= 1"),
        ([{"rule": "static_annual", "grams_per_kwh": -1}], "must be a number >= 0"),
        ([42], "expected a rule name"),
    ],
)
def test_bad_chains_are_errors(chain: list, text: str) -> None:
    with pytest.raises(GridDataError) as err:
        parse_chain(chain)
    assert text in str(err.value)


def test_bad_rows_are_errors() -> None:
    with pytest.raises(GridDataError, match="mix zones"):
        fill_gaps(series({0: 1.0}) + series({1: 1.0}, zone="DE"), T0, T0 + 2 * H)
    with pytest.raises(GridDataError, match="two rows for"):
        fill_gaps(series({0: 1.0}) + series({0: 2.0}), T0, T0 + 2 * H)
    with pytest.raises(GridDataError, match="mix signals"):
        fill_gaps(series({0: 1.0}) + series({1: 1.0}, signal="marginal"), T0, T0 + 2 * H)
    with pytest.raises(ValueError, match="timezone-aware"):
        fill_gaps(series({0: 1.0}), T0.replace(tzinfo=None), T0 + 2 * H)


def test_report_to_dict_and_summary() -> None:
    _, rep = fill_gaps(series(full(48, {30})), T0 + 24 * H, T0 + 48 * H)
    d = rep.to_dict()
    assert d["missing"] == [(T0 + 30 * H).isoformat()] and d["filled"][0]["rule"] == "previous_day_same_hour"
    assert "23/24 hours observed, 1 missing (1 by previous_day_same_hour), 0 left unfilled" in rep.summary()


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(min_value=0, max_value=71), max_size=60),
       st.lists(st.sampled_from(["previous_day_same_hour", "linear"]), max_size=2, unique=True))
def test_property_complete_and_honest(missing: set[int], head: list[str]) -> None:
    """Any gaps, any chain ending in static_annual: every hour present once, the
    observed rows untouched, and exactly the missing hours flagged as filled."""
    values = full(72, missing)
    out, rep = fill_gaps(series(values), T0, T0 + 72 * H, head + ["static_annual"])
    assert [r.hour_utc for r in out] == [T0 + i * H for i in range(72)]
    assert {r.hour_utc for r in out if r.filled} == {T0 + i * H for i in missing}
    assert all(r.fill_rule for r in out if r.filled) and not any(r.fill_rule for r in out if not r.filled)
    assert all(out[i].grams_per_kwh == v for i, v in values.items())
    assert len(rep.filled) == len(missing) and rep.complete
