"""Series of a ``query_range`` answer into columns, one series at a time (the store client's sinks).

Each sink turns a series' labels into row fields once and its points into
hours and floats, checking every value as it goes: an hourly increase that is
not finite or is negative stops the window (``check``), nothing is summed.
The sample at T (an hour's end) belongs to the hour starting at T - 1 h;
``shift_seconds`` is how much later than the hour's end the query was
evaluated (the recorded series are read half an hour late, see
``core.hourly_energy.recorded_expressions``).

The energy, prompt-token and workload sinks hold up to ``FLUSH_POINTS``
decoded points and convert them in one go (:class:`PendingSeries`): a
``float()`` per value mapped in C and NumPy for the hours, instead of Python
loops per point, which were most of a large pull's parsing time. Whatever the
fast conversion cannot vouch for (a value that is not a finite amount >= 0, a
point that is not a ``[time, "value"]`` pair) goes through the point-by-point
path, which checks and names it as before.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import Any

import numpy as np

from wattfleet.aggregator.ingest.batch import (
    Columns,
    collector_error_columns,
    energy_columns,
    inference_columns,
    prompt_token_columns,
    workload_columns,
)
from wattfleet.aggregator.ingest.matrix_whole import DecodedSeries
from wattfleet.aggregator.ingest.telemetry import (
    WORKLOAD_BAD_LABELS,
    WORKLOAD_COLLECTOR,
    energy_fields_from_labels,
    workload_fields_from_labels,
)
from wattfleet.core import catalog

# check(value, labels, ts) -> the float, or raises TelemetrySourceError naming the series and hour
Check = Callable[[Any, dict[str, str], float], float]


_INF = float("inf")


def checked(check: Check, values: list[list[Any]], labels: dict[str, str]) -> list[float]:
    """The points' values as floats; ``check`` sees each one only when one is not a finite amount >= 0."""
    out = [float(v) for _, v in values]
    if all(0.0 <= v < _INF for v in out):   # NaN fails both comparisons too
        return out
    return [check(v, labels, ts) for ts, v in values]


def hour_start_seconds(ts: Any, shift_seconds: int = 0) -> int:
    """Unix seconds of the hour whose end the sample at ``ts`` (``shift_seconds`` late) stands for."""
    return round(float(ts)) - shift_seconds - 3600


FLUSH_POINTS = 1 << 12 # decoded points a sink holds before converting them (a few MB of Python objects)
_EXACT_SECONDS = float(1 << 52)  # below this np.rint is Python's round() (both round half to even)


def converted(values: list[list[list[Any]]], shift_seconds: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """Hour starts (as :func:`hour_start_seconds`) and amounts of many series' points, in one go.

    None when any point is not a ``[time, value]`` pair, does not convert, or
    has an amount that is not finite and >= 0: the caller then takes the
    point-by-point path, whose ``check`` decides (and names the series).
    """
    pairs = list(chain.from_iterable(values))
    try:
        if set(map(len, pairs)) != {2}:
            return None
        flat = list(chain.from_iterable(pairs))
        ts = np.fromiter(map(float, flat[0::2]), dtype=np.float64, count=len(pairs))
        amounts = np.fromiter(map(float, flat[1::2]), dtype=np.float64, count=len(pairs))
    except (TypeError, ValueError, OverflowError):
        return None
    if not (np.all(amounts >= 0.0) and np.all(amounts < _INF) and np.all(np.abs(ts) < _EXACT_SECONDS)):
        return None
    return np.rint(ts).astype(np.int64) - (shift_seconds + 3600), amounts


def decoded_points(values: list[list[tuple[float, float]]], shift_seconds: int = 0
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """Hour starts and amounts of decoded series' points (floats already); None unless every amount is
    finite and >= 0 and every time representable, exactly as :func:`converted` decides."""
    pairs = list(chain.from_iterable(values))
    if not pairs:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    points = np.fromiter(chain.from_iterable(pairs), dtype=np.float64, count=2 * len(pairs)).reshape(len(pairs), 2)
    ts, amounts = points[:, 0], np.ascontiguousarray(points[:, 1])
    if not (np.all(amounts >= 0.0) and np.all(amounts < _INF) and np.all(np.abs(ts) < _EXACT_SECONDS)):
        return None
    return np.rint(ts).astype(np.int64) - (shift_seconds + 3600), amounts


def add_decoded_series(columns: Columns, kept: list[tuple[tuple[Any, ...], DecodedSeries]],
                       shift_seconds: int = 0, ones: bool = False) -> bool:
    """The kept series (their label fields, their decoded points) into ``columns``; False, adding
    nothing, unless :func:`decoded_points` vouches for all of them. ``ones``: each point is one reading
    (rejected series counted, not summed)."""
    points = decoded_points([s.values for _, s in kept], shift_seconds)
    if points is None:
        return False
    hours, amounts = points
    columns.add_arrays([f for f, _ in kept], [len(s.values) for _, s in kept], hours,
                       np.ones(len(hours)) if ones else amounts)
    return True


class PendingSeries:
    """Series of one answer (label fields already mapped) waiting for one conversion into ``columns``.

    Holds at most about ``flush_points`` points: memory stays bounded by that,
    not by the answer's size.
    """

    def __init__(self, columns: Columns, check: Check, shift_seconds: int = 0,
                 flush_points: int = FLUSH_POINTS) -> None:
        self.columns, self.check, self.shift, self.flush_points = columns, check, shift_seconds, flush_points
        self.fields: list[tuple[Any, ...]] = []
        self.labels: list[dict[str, str]] = []
        self.values: list[list[list[Any]]] = []
        self.points = 0

    def add(self, fields: tuple[Any, ...], labels: dict[str, str], values: list[list[Any]]) -> None:
        self.fields.append(fields)
        self.labels.append(labels)
        self.values.append(values)
        self.points += len(values)
        if self.points >= self.flush_points:
            self.flush()

    def flush(self) -> None:
        fields, labels, values = self.fields, self.labels, self.values
        if not fields:
            return
        self.fields, self.labels, self.values, self.points = [], [], [], 0
        fast = converted(values, self.shift)
        if fast is not None:
            self.columns.add_arrays(fields, [len(v) for v in values], *fast)
            return
        for f, lab, v in zip(fields, labels, values, strict=True):
            hours = [hour_start_seconds(ts, self.shift) for ts, _ in v]
            self.columns.add(f, hours, checked(self.check, v, lab))


class EnergySink:
    """Hourly energy per device (GPU or CPU domain) into :func:`energy_columns`."""

    def __init__(self, metric: catalog.Metric, check: Check, shift_seconds: int = 0) -> None:
        self.metric, self.check, self.shift = metric, check, shift_seconds
        self.columns: Columns = energy_columns()
        self.pending = PendingSeries(self.columns, check, shift_seconds)

    def add(self, labels: dict[str, str], values: list[list[Any]]) -> None:
        fields = energy_fields_from_labels(self.metric, labels)
        if fields is None or not values:
            return
        self.pending.add(fields, labels, values)

    def add_decoded(self, series: list[DecodedSeries]) -> bool:
        """A whole decoded answer (:mod:`.matrix_whole`); False when the streamed path must decide."""
        kept = []
        for s in series:
            fields = energy_fields_from_labels(self.metric, s.metric)
            if fields is not None and s.values:
                kept.append((fields, s))
        return add_decoded_series(self.columns, kept, self.shift)

    def done(self) -> None:
        self.pending.flush()


class InferenceSink:
    """Phase energy or tokens per engine, model and phase, summed per key (two queries fill one dict)."""

    def __init__(self, check: Check, slots: dict[tuple[Any, ...], list[float]], index: int) -> None:
        self.check, self.slots, self.index = check, slots, index
        self.pending: list[tuple[tuple[Any, ...], float]] = []

    def add(self, labels: dict[str, str], values: list[list[Any]]) -> None:
        key = (labels.get("node", ""), labels.get("cluster", ""), labels.get("site", ""), labels.get("engine", ""),
               labels.get("model", ""), labels.get("phase", ""))
        for ts, v in values:
            self.pending.append(((hour_start_seconds(ts),) + key, self.check(v, labels, ts)))

    def done(self) -> None:
        """Nothing to convert: the answer is added to the slots by :meth:`commit`."""

    def commit(self) -> None:
        """Add this (complete) answer into the shared slots; a failed attempt's sink is never committed."""
        for key, v in self.pending:
            self.slots.setdefault(key, [0.0, 0.0])[self.index] += v


def inference_batch(slots: dict[tuple[Any, ...], list[float]]) -> Columns:
    cols = inference_columns()
    for (hour_s, *labels), (energy, tokens) in slots.items():
        cols.add(tuple(labels), [hour_s], [energy], [tokens])
    return cols


class CollectorErrorSink:
    """Rejected and failed readings per node, collector and reason and hour; zero hours are left out."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.columns: Columns = collector_error_columns()

    def add(self, labels: dict[str, str], values: list[list[Any]]) -> None:
        collector = labels.get("collector", "")
        if not collector and labels.get("engine"):
            # wattfleet_inference_rejected_samples_total: values of one engine's page, by engine
            collector = f"inference:{labels['engine']}"
        fields = (labels.get("node", ""), labels.get("cluster", ""), labels.get("site", ""), collector,
                  labels.get("reason", ""))
        for ts, v in values:
            readings = self.check(v, labels, ts)
            if readings > 0:
                self.columns.add(fields, [hour_start_seconds(ts)], [readings])

    def done(self) -> None:
        """Nothing pending: points are added as they come (few: only hours with rejections)."""


class PromptTokenSink:
    """Prompt tokens per engine, model and prompt source and hour; sources outside the catalog are left out."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.columns: Columns = prompt_token_columns()
        self.pending = PendingSeries(self.columns, check)

    def add(self, labels: dict[str, str], values: list[list[Any]]) -> None:
        prompt_source = labels.get("source", "")
        if prompt_source not in catalog.PROMPT_SOURCES:
            return
        fields = (labels.get("node", ""), labels.get("cluster", ""), labels.get("site", ""),
                  labels.get("engine", ""), labels.get("model", ""), prompt_source)
        self.pending.add(fields, labels, values)

    def add_decoded(self, series: list[DecodedSeries]) -> bool:
        """A whole decoded answer (:mod:`.matrix_whole`); False when the streamed path must decide."""
        kept = []
        for s in series:
            labels = s.metric
            if labels.get("source", "") in catalog.PROMPT_SOURCES:
                kept.append(((labels.get("node", ""), labels.get("cluster", ""), labels.get("site", ""),
                              labels.get("engine", ""), labels.get("model", ""), labels["source"]), s))
        return add_decoded_series(self.columns, kept)

    def done(self) -> None:
        self.pending.flush()


class WorkloadSink:
    """Energy per node, component and workload (or non-workload share) and hour, from the workload query.

    A series whose component or share the contract does not know is not summed: each of its hours is
    one rejected reading of collector ``workload_attribution`` (reason ``invalid_labels``) in ``errors``.
    Two series that resolve to the same row (``namespace`` vs ``exported_namespace``) stay two rows; the
    facts sum them.
    """

    def __init__(self, check: Check, shift_seconds: int = 0) -> None:
        self.check, self.shift = check, shift_seconds
        self.columns: Columns = workload_columns()
        self.errors: Columns = collector_error_columns()
        self.pending = PendingSeries(self.columns, check, shift_seconds)

    def add(self, labels: dict[str, str], values: list[list[Any]]) -> None:
        fields = workload_fields_from_labels(labels)
        if fields is not None:
            self.pending.add(fields, labels, values)
            return
        self.pending.flush()  # the series before this one are checked first, as they came
        hours = [hour_start_seconds(ts, self.shift) for ts, _ in values]
        checked(self.check, values, labels)  # its values are not summed, but a broken one still stops the window
        node = (labels.get("node", ""), labels.get("cluster", ""), labels.get("site", ""), WORKLOAD_COLLECTOR,
                WORKLOAD_BAD_LABELS)
        self.errors.add(node, hours, [1.0] * len(hours))

    def add_decoded(self, series: list[DecodedSeries]) -> bool:
        """A whole decoded answer (:mod:`.matrix_whole`); False when the streamed path must decide."""
        good, bad = [], []
        for s in series:
            fields = workload_fields_from_labels(s.metric)
            if fields is not None:
                good.append((fields, s))
            else:
                labels = s.metric
                bad.append(((labels.get("node", ""), labels.get("cluster", ""), labels.get("site", ""),
                             WORKLOAD_COLLECTOR, WORKLOAD_BAD_LABELS), s))
        if bad and decoded_points([s.values for _, s in bad]) is None:  # checked though not summed
            return False
        return add_decoded_series(self.columns, good, self.shift) and \
            add_decoded_series(self.errors, bad, self.shift, ones=True)

    def done(self) -> None:
        self.pending.flush()
