"""The streamed reader of query_range answers: the same series as json.loads, however the bytes are cut.

The answers follow the Prometheus HTTP API (prometheus/prometheus docs/querying/api.md, "Range queries"),
with the extra top-level keys VictoriaMetrics (``isPartial``, ``stats``) and Thanos (``warnings``) add.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattfleet.aggregator.ingest.matrix_stream import MatrixFormatError, iter_matrix

label = st.text(st.characters(codec="utf-8"), max_size=8)
series = st.fixed_dictionaries({
    "metric": st.dictionaries(st.sampled_from(["node", "gpu", "site", "ŝïtë"]), label, max_size=4),
    "values": st.lists(st.tuples(st.integers(1_600_000_000, 1_700_000_000),
                                 st.floats(allow_nan=False, allow_infinity=False).map(repr)).map(list),
                       max_size=5),
})


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    out, i = [], 0
    for n in sizes:
        if i >= len(data):
            break
        out.append(data[i:i + n])
        i += n
    out.append(data[i:])
    return out


def collect(chunks: list[bytes]) -> tuple[list[Any], dict[str, Any]]:
    seen: list[Any] = []
    top = iter_matrix(iter(chunks), lambda m, v: seen.append({"metric": m, "values": v}))
    return seen, top


@settings(max_examples=60, deadline=None)
@given(st.lists(series, max_size=6), st.lists(st.integers(1, 40), max_size=60), st.booleans())
def test_any_chunking_gives_the_series_json_loads_gives(result: list[Any], sizes: list[int], vm_style: bool) -> None:
    answer: dict[str, Any] = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    if vm_style:   # keys before and after data, as VictoriaMetrics and Thanos write them
        answer = {"status": "success", "isPartial": False, "data": answer["data"],
                  "stats": {"seriesFetched": "3", "executionTimeMsec": 12}, "warnings": ["w"]}
    raw = json.dumps(answer, indent=1 if vm_style else None, ensure_ascii=not vm_style).encode()
    seen, top = collect(chunked(raw, sizes))
    assert seen == json.loads(raw)["data"]["result"]
    assert top["status"] == "success" and top["data"]["series"] == len(result)
    if vm_style:
        assert top["stats"]["executionTimeMsec"] == 12


def test_a_number_cut_at_a_chunk_end_is_read_whole() -> None:
    raw = b'{"status":"success","data":{"resultType":"matrix","result":[]},"stats":{"n":123456}, "x": 987654}'
    for cut in range(1, len(raw)):
        _, top = collect([raw[:cut], raw[cut:]])
        assert top["x"] == 987654 and top["stats"]["n"] == 123456


@pytest.mark.parametrize("raw, message", [
    (b'{"status":"success","data":{"resultType":"vector","result":[]}}', "expected a matrix"),
    (b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"2"]]}', "expected"),
    (b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"2"]]}]}} junk',
     "after the answer"),
    (b'{"status":"success","data":{"resultType":"matrix","result":[[1, 2]]}}', "not {metric, values}"),
    (b"<html>bad gateway</html>", "expected one of"),
    (b'{"status":"success","data":{"resultType":"matrix","result":["' + b"x" * 5000 + b'"]}}', "larger than"),
])
def test_what_is_not_a_matrix_answer_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(MatrixFormatError, match=message):
        iter_matrix(iter(chunked(raw, [7] * 2000)), lambda m, v: None, max_series_chars=1000)
