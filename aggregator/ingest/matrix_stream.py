"""Read a ``query_range`` answer one series at a time, as its bytes arrive.

``json.loads`` of a whole answer holds every point of every series as Python
objects at once: on a large fleet that, not the database, was the ingest's
peak memory. The answer's shape is fixed by the Prometheus HTTP API
(``{"status": ..., "data": {"resultType": "matrix", "result": [series, ...]}}``,
VictoriaMetrics and Thanos add keys such as ``stats``, ``isPartial`` or
``warnings``), so this reader walks only those two object levels by hand and
hands each element of ``result`` to ``json``'s own decoder as soon as it is
complete. What it holds at any moment is one series and the unread rest of one
network chunk, whatever the size of the answer.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator
from typing import Any

_WS = " \t\r\n"
_DECODER = json.JSONDecoder()


class MatrixFormatError(ValueError):
    """The bytes are not a Prometheus API answer (or one part is larger than allowed)."""


class _Reader:
    """A text buffer over byte chunks that decodes JSON values only once they are complete."""

    def __init__(self, chunks: Iterator[bytes], max_value_chars: int) -> None:
        self.chunks = chunks
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.max_value_chars = max_value_chars

    def _more(self) -> bool:
        if self.eof:
            return False
        if self.pos:
            self.buf, self.pos = self.buf[self.pos:], 0
        if len(self.buf) > self.max_value_chars:
            raise MatrixFormatError(f"one value of the answer is larger than {self.max_value_chars} characters")
        try:
            chunk = next(self.chunks)
        except StopIteration:
            self.eof = True
            self.buf += self.decoder.decode(b"", final=True)
            return False
        self.buf += self.decoder.decode(chunk)
        return True

    def peek(self) -> str:
        """The next non-blank character ('' at the end), not consumed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, chars: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            raise MatrixFormatError(f"expected one of {chars!r}, found {c or 'the end'!r}")
        self.pos += 1
        return c

    def value(self) -> Any:
        """The next complete JSON value (a number is complete only once a character follows it)."""
        self.peek()
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self._more():
                    continue
                raise MatrixFormatError(f"not JSON: {exc.msg}") from None
            if end >= len(self.buf) and self._more():
                continue  # a number (or literal) cut at the chunk's end: read on and decode again
            self.pos = end
            return obj


def iter_matrix(chunks: Iterator[bytes], on_series: Callable[[dict[str, str], list[list[Any]]], None],
                max_series_chars: int = 64 << 20) -> dict[str, Any]:
    """Call ``on_series(metric, values)`` for each series of the answer; return its other top-level keys.

    The caller checks ``status`` in what is returned (``resultType`` is checked
    here: anything but a matrix is refused). Raises :class:`MatrixFormatError`
    on anything that is not the documented shape.
    """
    r = _Reader(chunks, max_series_chars)
    top: dict[str, Any] = {}
    r.expect("{")
    if r.peek() == "}":
        r.expect("}")
        return top
    while True:
        key = r.value()
        r.expect(":")
        if key == "data" and r.peek() == "{":
            top["data"] = _data(r, on_series)
        else:
            top[key] = r.value()
        if r.expect(",}") == "}":
            break
    if r.peek():
        raise MatrixFormatError("bytes after the answer's end")
    return top


def _data(r: _Reader, on_series: Callable[[dict[str, str], list[list[Any]]], None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    r.expect("{")
    if r.peek() == "}":
        r.expect("}")
        return out
    while True:
        key = r.value()
        r.expect(":")
        if key == "result" and r.peek() == "[":
            if out.get("resultType", "matrix") != "matrix":
                raise MatrixFormatError(f"expected a matrix, got {out['resultType']!r}")
            out["series"] = _result(r, on_series)
        else:
            out[key] = r.value()
            if key == "resultType" and out[key] != "matrix":
                raise MatrixFormatError(f"expected a matrix, got {out[key]!r}")
        if r.expect(",}") == "}":
            return out


def _result(r: _Reader, on_series: Callable[[dict[str, str], list[list[Any]]], None]) -> int:
    r.expect("[")
    n = 0
    if r.peek() == "]":
        r.expect("]")
        return n
    while True:
        series = r.value()
        if not isinstance(series, dict) or not isinstance(series.get("metric"), dict) \
                or not isinstance(series.get("values", []), list):
            raise MatrixFormatError("a result element is not {metric, values}")
        on_series(series["metric"], series.get("values", []))
        n += 1
        if r.expect(",]") == "]":
            return n
