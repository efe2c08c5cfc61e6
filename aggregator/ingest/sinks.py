"""Series of a ``query_range`` answer into columns, one series at a time (the store client's sinks).

Each sink turns a series' labels into row fields once and its points into
hours and floats, checking every value as it goes: an hourly increase that is
not finite or is negative stops the window (``check``), nothing is summed.
The sample at T (an hour's end) belongs to the hour starting at T - 1 h;
``shift_seconds`` is how much later than the hour's end the query was
evaluated (the recorded series are read half an hour late, see
``core.hourly_energy.recorded_expressions``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wattfleet.aggregator.ingest.batch import (
    Columns,
    collector_error_columns,
    energy_columns,
    inference_columns,
    prompt_token_columns,
    workload_columns,
)
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


class EnergySink:
    """Hourly energy per device (GPU or CPU domain) into :func:`energy_columns`."""

    def __init__(self, metric: catalog.Metric, check: Check, shift_seconds: int = 0) -> None:
        self.metric, self.check, self.shift = metric, check, shift_seconds
        self.columns: Columns = energy_columns()

    def add(self, labels: dict[str, str], values: list[list[Any]]) -> None:
        fields = energy_fields_from_labels(self.metric, labels)
        if fields is None or not values:
            return
        offset = self.shift + 3600
        hours = [round(float(ts)) - offset for ts, _ in values]
        self.columns.add(fields, hours, checked(self.check, values, labels))


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


class PromptTokenSink:
    """Prompt tokens per engine, model and prompt source and hour; sources outside the catalog are left out."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.columns: Columns = prompt_token_columns()

    def add(self, labels: dict[str, str], values: list[list[Any]]) -> None:
        prompt_source = labels.get("source", "")
        if prompt_source not in catalog.PROMPT_SOURCES:
            return
        fields = (labels.get("node", ""), labels.get("cluster", ""), labels.get("site", ""),
                  labels.get("engine", ""), labels.get("model", ""), prompt_source)
        hours = [hour_start_seconds(ts) for ts, _ in values]
        self.columns.add(fields, hours, checked(self.check, values, labels))


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

    def add(self, labels: dict[str, str], values: list[list[Any]]) -> None:
        fields = workload_fields_from_labels(labels)
        hours = [hour_start_seconds(ts, self.shift) for ts, _ in values]
        joules = checked(self.check, values, labels)
        if fields is None:
            node = (labels.get("node", ""), labels.get("cluster", ""), labels.get("site", ""), WORKLOAD_COLLECTOR,
                    WORKLOAD_BAD_LABELS)
            self.errors.add(node, hours, [1.0] * len(hours))
            return
        self.columns.add(fields, hours, joules)
