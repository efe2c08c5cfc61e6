"""A ``query_range`` answer small enough to hold, decoded whole in C with its values converted on the way.

The streamed reader (:mod:`.matrix_stream`) holds one series at a time
whatever the answer's size, but pays Python for every point: a list, an int
and a string decoded, then a ``float()`` each. Most answers are a few MB (a
series shard over a page of hours), and for those msgspec's typed decoder
builds each point as two floats directly (its lax mode converts the
``"<sample_value>"`` string; its float parsing is correctly rounded, as
Python's ``float()`` is), several times faster. The store client uses this
only for answers under its ``whole_answer_bytes`` cap, and only when every
value comes out a finite amount >= 0 (anything else, and any answer that is
not exactly a successful matrix, is read again by the streamed reader, whose
checks name the series): the rows stored are the same either way.

The shape follows the Prometheus HTTP API (prometheus/prometheus docs/querying/api.md, "Range queries");
keys other stores add (``stats``, ``isPartial``, ``warnings``) are ignored here as there.
"""

from __future__ import annotations

from typing import Any

import msgspec


class DecodedSeries(msgspec.Struct):
    """One element of ``result``: its labels and its ``[time, value]`` points as floats."""

    metric: dict[str, str]
    values: list[tuple[float, float]] = []


class _Data(msgspec.Struct):
    resultType: str
    result: list[DecodedSeries]


class _Answer(msgspec.Struct):
    status: str
    data: _Data


_DECODER = msgspec.json.Decoder(_Answer, strict=False)  # lax: "123.4" -> 123.4 (the sample value strings)


def decode_matrix(body: bytes) -> tuple[dict[str, Any], list[DecodedSeries]] | None:
    """The answer's top-level keys (as the streamed reader returns them) and its series; None when the
    body is not a successful matrix answer of exactly this shape (the streamed reader then decides)."""
    try:
        answer = _DECODER.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if answer.status != "success" or answer.data.resultType != "matrix":
        return None
    top = {"status": answer.status, "data": {"resultType": answer.data.resultType,
                                             "series": len(answer.data.result)}}
    return top, answer.data.result
