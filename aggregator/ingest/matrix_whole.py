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
of the keys other stores add, ``isPartial`` (VictoriaMetrics) and ``warnings`` are kept in the top-level
keys returned, as the streamed reader keeps them (the store client refuses a partial answer); others
(``stats``) are ignored here as there.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol


class DecodedSeries(Protocol):
    """One element of ``result``: its labels and its ``[time, value]`` points as floats."""

    metric: dict[str, str]
    values: list[tuple[float, float]]


@functools.cache
def _decoder() -> tuple[Any, tuple[type[Exception], ...]] | None:
    """msgspec's typed decoder of a matrix answer and its errors; None where msgspec is not installed."""
    try:
        # Here, not at the top: an environment installed before msgspec joined the aggregator extra
        # still runs, streaming every answer (the rows are the same, only slower).
        import msgspec
    except ImportError:
        return None

    # Built with real types, not annotations (strings under ``from __future__ import annotations``).
    series = msgspec.defstruct("Series", [("metric", dict[str, str]), ("values", list[tuple[float, float]], [])])
    data = msgspec.defstruct("Data", [("resultType", str), ("result", list[series])])  # type: ignore[valid-type]
    answer = msgspec.defstruct("Answer", [("status", str), ("data", data), ("isPartial", bool, False),
                                          ("warnings", list[str], [])])
    # lax (strict=False): the sample value strings ("123.4") become floats
    return msgspec.json.Decoder(answer, strict=False), (msgspec.DecodeError, msgspec.ValidationError)


def decode_matrix(body: bytes) -> tuple[dict[str, Any], list[DecodedSeries]] | None:
    """The answer's top-level keys (as the streamed reader returns them) and its series; None when the
    body is not a successful matrix answer of exactly this shape (the streamed reader then decides),
    or msgspec is not installed."""
    decoder = _decoder()
    if decoder is None:
        return None
    decode, errors = decoder
    try:
        answer = decode.decode(body)
    except errors:
        return None
    if answer.status != "success" or answer.data.resultType != "matrix":
        return None
    top = {"status": answer.status, "data": {"resultType": answer.data.resultType,
                                             "series": len(answer.data.result)}}
    if answer.isPartial:
        top["isPartial"] = True
    if answer.warnings:
        top["warnings"] = answer.warnings
    return top, answer.data.result
