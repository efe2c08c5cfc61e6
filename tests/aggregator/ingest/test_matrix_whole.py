"""Whole answers decoded in C give exactly the rows the streamed reader gives, and only under the size cap.

Answers follow the Prometheus HTTP API (prometheus/prometheus docs/querying/api.md, "Range queries"):
``{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {...}, "values":
[[<unix_time>, "<sample_value>"], ...]}]}}``, values being Go floats formatted as strings (``NaN``,
``+Inf``, ``-Inf`` included); VictoriaMetrics adds ``isPartial`` and ``stats``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("msgspec")  # an environment installed before it joined the aggregator extra streams all

from ingest_checks import Refused, strict_check  # noqa: E402

from wattfleet.aggregator.ingest.batch import Columns  # noqa: E402
from wattfleet.aggregator.ingest.matrix_whole import decode_matrix  # noqa: E402
from wattfleet.aggregator.ingest.sinks import EnergySink, PromptTokenSink, WorkloadSink  # noqa: E402
from wattfleet.aggregator.ingest.store_client import StoreClient  # noqa: E402
from wattfleet.core import catalog  # noqa: E402


def answer(result: list[dict[str, Any]], vm_style: bool = False) -> bytes:
    top: dict[str, Any] = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    if vm_style:
        top["isPartial"] = False
        top["stats"] = {"seriesFetched": str(len(result))}
    return json.dumps(top, separators=(",", ":")).encode()


def chunks_of(body: bytes, size: int, read: list[int] | None = None) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        if read is not None:
            read.append(i + size)
        yield body[i:i + size]


def read(body: bytes, new_sink: Callable[[], Any], whole_answer_bytes: int) -> Any:
    client = StoreClient("http://127.0.0.1:1", whole_answer_bytes=whole_answer_bytes)
    return client._read_matrix(chunks_of(body, 4096), new_sink)[1]


def columns_of(sink: Any) -> list[Any]:
    cols: list[Columns] = [sink.columns] + ([sink.errors] if hasattr(sink, "errors") else [])
    return [(c.series, c.points, c.hour_array().tolist(), [c.value_array(v).tobytes() for v in c.value_fields])
            for c in cols]


SINKS: dict[str, Callable[[], Any]] = {
    "energy": lambda: EnergySink(catalog.GPU_ENERGY, strict_check),
    "cpu": lambda: EnergySink(catalog.CPU_ENERGY, strict_check),
    "prompt": lambda: PromptTokenSink(strict_check),
    "workload": lambda: WorkloadSink(strict_check, 1800),
}

amount = st.one_of(st.floats(min_value=0, allow_infinity=False).map(repr),
                   st.floats(min_value=0, max_value=1e7).map(lambda f: f"{f:.3f}"),
                   st.sampled_from(["0", "1e3", "0.1000000000000000055511151231257827", "5e-324",
                                    "1.7976931348623157e308", "2.2250738585072011e-308"]))
hostile = st.sampled_from(["NaN", "+Inf", "-Inf", "-1", "-0.5", "1e400", " 7", "1_0"])
labels = st.fixed_dictionaries({"node": st.sampled_from(["n1", "n2"]), "gpu": st.sampled_from(["0", "1"])},
                               optional={"domain": st.sampled_from(["package", "dram", "core"]),
                                         "source": st.sampled_from(["computed", "cached", "bogus"]),
                                         "component": st.sampled_from(["gpu", "cpu", "toaster"]),
                                         "share": st.sampled_from(["workload", "idle", "nope"]),
                                         "workload": st.just("deployment/web")})


def result_strategy(values: st.SearchStrategy[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    point = st.tuples(st.integers(1_600_000_000, 1_700_000_000), values).map(list)
    return st.lists(st.fixed_dictionaries({"metric": labels, "values": st.lists(point, max_size=5)}), max_size=6)


def same_outcome(body: bytes, new_sink: Callable[[], Any]) -> None:
    try:
        streamed = columns_of(read(body, new_sink, 0))
    except Refused as exc:
        with pytest.raises(Refused) as got:
            read(body, new_sink, 1 << 20)
        assert str(got.value) == str(exc)  # the same series, hour and value named
        return
    assert columns_of(read(body, new_sink, 1 << 20)) == streamed


@settings(max_examples=80, deadline=None)
@given(result_strategy(amount), st.sampled_from(sorted(SINKS)), st.booleans())
def test_whole_and_streamed_answers_give_the_same_rows(result: list[Any], sink: str, vm_style: bool) -> None:
    body = answer(result, vm_style)
    decoded = decode_matrix(body)
    assert decoded is not None and SINKS[sink]().add_decoded(decoded[1])  # the whole path is the one taken
    same_outcome(body, SINKS[sink])


@settings(max_examples=80, deadline=None)
@given(result_strategy(st.one_of(amount, hostile)), st.sampled_from(sorted(SINKS)))
def test_hostile_values_are_refused_or_zeroed_as_the_streamed_reader_does(result: list[Any], sink: str) -> None:
    same_outcome(answer(result), SINKS[sink])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(repr),
                          st.decimals(min_value=0, max_value=10**12, allow_nan=False).map(str),
                          st.from_regex(r"\A[0-9]{1,25}\.[0-9]{1,30}\Z")), min_size=1, max_size=20))
def test_decoded_values_are_pythons_float_bit_for_bit(values: list[str]) -> None:
    decoded = decode_matrix(answer([{"metric": {}, "values": [[1_650_000_000, v] for v in values]}]))
    if decoded is None:  # a form the C decoder does not take (e.g. "1E+1"): the streamed reader reads it
        return
    got = [p[1] for p in decoded[1][0].values]
    assert [math.copysign(1, g) for g in got] == [math.copysign(1, float(v)) for v in values]
    assert got == [float(v) for v in values]
    assert [g.hex() for g in got] == [float(v).hex() for v in values]


@pytest.mark.parametrize("body", [b'{"status":"error","errorType":"bad_data","error":"x"}',
                                  b'{"status":"success","data":{"resultType":"vector","result":[]}}',
                                  b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":1}}]}}',
                                  b"not json"])
def test_what_is_not_a_plain_matrix_answer_is_left_to_the_streamed_reader(body: bytes) -> None:
    assert decode_matrix(body) is None


def test_an_answer_over_the_cap_is_streamed_never_held_whole() -> None:
    result = [{"metric": {"node": f"n{i}", "gpu": "0"}, "values": [[1_650_000_000 + 3600 * h, "1.5"]
                                                                  for h in range(24)]} for i in range(400)]
    body = answer(result)
    bytes_read: list[int] = []
    first_series_at: list[int] = []

    class Watching(EnergySink):
        def add(self, labels: dict[str, str], values: list[list[Any]]) -> None:
            if not first_series_at:
                first_series_at.append(bytes_read[-1])
            super().add(labels, values)

    client = StoreClient("http://127.0.0.1:1", whole_answer_bytes=len(body) // 4)
    sink = client._read_matrix(chunks_of(body, 1024, bytes_read), lambda: Watching(catalog.GPU_ENERGY,
                                                                                   strict_check))[1]
    assert len(sink.columns) == 400 * 24
    assert first_series_at[0] <= len(body) // 4 + 1024  # series were taken before the rest was read

    bytes_read.clear()
    client = StoreClient("http://127.0.0.1:1", whole_answer_bytes=len(body) * 2)
    whole = client._read_matrix(chunks_of(body, 1024, bytes_read), lambda: EnergySink(catalog.GPU_ENERGY,
                                                                                      strict_check))[1]
    assert columns_of(whole) == columns_of(sink)
