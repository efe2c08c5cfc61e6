"""The sinks' vectorised conversion gives exactly what the point-by-point path gives, or hands over to it.

Values come as the Prometheus HTTP API writes them (prometheus/prometheus docs/querying/api.md, "Range
queries": ``[<unix_time>, "<sample_value>"]``, the value a Go float formatted as a string, ``NaN``,
``+Inf`` and ``-Inf`` included).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_checks import Refused, strict_check

from wattfleet.aggregator.ingest.batch import Columns, energy_columns
from wattfleet.aggregator.ingest.sinks import EnergySink, PendingSeries, WorkloadSink, checked, converted
from wattfleet.core import catalog


def slow_columns(series: list[tuple[dict[str, str], list[list[Any]]]], shift: int = 0) -> Columns:
    """The point-by-point path only: what every answer went through before the vectorised one."""
    cols = energy_columns()
    for labels, values in series:
        hours = [round(float(ts)) - shift - 3600 for ts, _ in values]
        cols.add(("n", "c", "s", labels["gpu"], "gpu", "gpu", None, "measured"), hours,
                 checked(strict_check, values, labels))
    return cols


def fast_columns(series: list[tuple[dict[str, str], list[list[Any]]]], flush_points: int, shift: int = 0
                 ) -> Columns:
    cols = energy_columns()
    pending = PendingSeries(cols, strict_check, shift, flush_points)
    for labels, values in series:
        pending.add(("n", "c", "s", labels["gpu"], "gpu", "gpu", None, "measured"), labels, values)
        assert pending.points < flush_points  # never more held than the bound
    pending.flush()
    return cols


def same(a: Columns, b: Columns) -> None:
    assert a.series == b.series and a.points == b.points
    assert a.hour_array().tolist() == b.hour_array().tolist()
    assert a.value_array("joules").tobytes() == b.value_array("joules").tobytes()  # bit for bit


amount = st.one_of(st.floats(min_value=0, allow_infinity=False).map(repr),
                   st.floats(min_value=0, max_value=1e7).map(lambda f: f"{f:.3f}"),
                   st.sampled_from(["0", "1e3", "123456789.123456789", "5e-324", "1.7976931348623157e308"]))
hostile = st.sampled_from(["NaN", "+Inf", "-Inf", "-1", "-0.5", "1e400"])
point_time = st.one_of(st.integers(1_600_000_000, 1_700_000_000),
                       st.floats(1.6e9, 1.7e9, allow_nan=False).map(lambda f: round(f, 3)))


def series_strategy(values: st.SearchStrategy[str]) -> st.SearchStrategy[list[tuple[dict[str, str], list[list[Any]]]]]:
    return st.lists(st.tuples(st.builds(lambda g: {"gpu": str(g)}, st.integers(0, 7)),
                              st.lists(st.tuples(point_time, values).map(list), max_size=6)), max_size=8)


@settings(max_examples=80, deadline=None)
@given(series_strategy(amount), st.integers(1, 20), st.sampled_from([0, 1800]))
def test_the_vectorised_path_stores_exactly_what_the_point_path_stores(series: list[Any], flush: int,
                                                                       shift: int) -> None:
    same(fast_columns(series, flush, shift), slow_columns(series, shift))


@settings(max_examples=60, deadline=None)
@given(series_strategy(st.one_of(amount, hostile)), st.integers(1, 20))
def test_a_hostile_value_is_refused_or_zeroed_exactly_as_point_by_point(series: list[Any], flush: int) -> None:
    try:
        expected = slow_columns(series)
    except Refused as exc:
        with pytest.raises(Refused) as got:
            fast_columns(series, flush)
        assert str(got.value) == str(exc)  # the same (first) series and hour named
        return
    same(fast_columns(series, flush), expected)


@pytest.mark.parametrize("values", [[[1_650_000_000]], [[1_650_000_000, "1", "2"]], [[None, "1"]],
                                    [[1_650_000_000, None]], [[1_650_000_000, "x"]], [[1e300, "1"]], [5]])
def test_what_is_not_a_time_value_pair_is_not_vectorised(values: list[Any]) -> None:
    assert converted([values]) is None


def test_converted_hours_are_pythons_round_half_to_even() -> None:
    got = converted([[[1_650_002_400.5, "1"], [1_650_002_401.5, "2"], [1_650_002_402.4999, "3"]]])
    assert got is not None
    assert got[0].tolist() == [round(t) - 3600 for t in (1_650_002_400.5, 1_650_002_401.5, 1_650_002_402.4999)]
    assert got[1].dtype == np.float64


def test_sinks_finish_an_answer_only_when_told_it_is_complete() -> None:
    sink = EnergySink(catalog.GPU_ENERGY, strict_check)
    sink.add({"node": "n", "gpu": "0"}, [[1_650_003_600, "5"]])
    assert len(sink.columns) == 0  # still pending: a sink is read only after done()
    sink.done()
    assert len(sink.columns) == 1 and sink.columns.value_array("joules").tolist() == [5.0]


def test_workload_series_with_unknown_labels_are_counted_after_the_ones_before_them() -> None:
    sink = WorkloadSink(strict_check)
    good = {"node": "n", "component": "gpu", "share": "idle"}
    sink.add(good, [[1_650_003_600, "5"]])
    sink.add({"node": "n", "component": "toaster", "share": "idle"}, [[1_650_003_600, "7"], [1_650_007_200, "1"]])
    sink.add(good, [[1_650_007_200, "6"]])
    sink.done()
    assert sink.columns.value_array("joules").tolist() == [5.0, 6.0]
    assert sink.errors.value_array("readings").tolist() == [1.0, 1.0]
    with pytest.raises(Refused):  # a broken value on a series that is not summed still stops the window
        bad = WorkloadSink(strict_check)
        bad.add({"node": "n", "component": "toaster", "share": "idle"}, [[1_650_003_600, "-Inf"]])
