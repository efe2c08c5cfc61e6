"""Telemetry rows as columns: what one answer of the store becomes before DuckDB takes it whole.

A row object per device-hour (a dataclass, its datetime, its floats) costs
hundreds of bytes; a series' labels repeated as references to the same
strings and its points as plain floats cost a few dozen. A batch is one
answer's rows (one query over one series shard and one page of hours), so
its size is bounded by the shard and the page, never by the fleet. The
writer hands its columns to DuckDB as NumPy arrays (``sql/staging/ingest.sql``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

import numpy as np

from wattfleet.aggregator.ingest.telemetry import (
    ENERGY_LABEL_FIELDS,
    WORKLOAD_LABEL_FIELDS,
    CollectorErrorRow,
    EnergyRow,
    InferenceRow,
    PromptTokenRow,
    Telemetry,
    WorkloadRow,
)

_EPOCH = datetime(1970, 1, 1)


def epoch_seconds(hour_utc: datetime) -> int:
    """Naive UTC (or aware) to whole Unix seconds."""
    if hour_utc.tzinfo is not None:
        return int(hour_utc.timestamp())
    return int((hour_utc - _EPOCH).total_seconds())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(tzinfo=None)


class Columns:
    """Rows of one staging table as columns: ``hour_s`` (Unix seconds), label fields, value fields.

    Label fields are kept once per series with its number of points and
    repeated only when the arrays are built (``np.repeat``), so a series of
    24 points costs one tuple, not 24 references per field. Points arrive
    either one series at a time as Python lists (:meth:`add`) or many series
    at once as NumPy arrays (:meth:`add_arrays`, the sinks' vectorised path);
    both keep the order the series came in.
    """

    def __init__(self, label_fields: tuple[str, ...], value_fields: tuple[str, ...]) -> None:
        self.label_fields = label_fields
        self.value_fields = value_fields
        self.series: list[tuple[Any, ...]] = []   # label values per series
        self.points: list[int] = []               # points per series
        self._hours: list[int] = []               # points added by add(), not yet sealed into a chunk
        self._values: dict[str, list[float]] = {f: [] for f in value_fields}
        self._chunks: list[tuple[np.ndarray, list[np.ndarray]]] = []  # (hour_s, values in value_fields' order)
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def add(self, labels: tuple[Any, ...], hours: list[int], *values: list[float]) -> None:
        """One series: its label fields once, its hours and values point by point."""
        if len(labels) != len(self.label_fields) or len(values) != len(self.value_fields):
            raise ValueError("labels or values do not match the columns")
        self.series.append(labels)
        self.points.append(len(hours))
        self._hours.extend(hours)
        for name, vs in zip(self.value_fields, values, strict=True):
            self._values[name].extend(vs)
        self._rows += len(hours)

    def add_arrays(self, labels: list[tuple[Any, ...]], points: list[int], hours: np.ndarray,
                   *values: np.ndarray) -> None:
        """Many series at once: their label fields and point counts, and all their points as arrays."""
        if len(values) != len(self.value_fields) or any(len(f) != len(self.label_fields) for f in labels) \
                or sum(points) != len(hours) or any(len(v) != len(hours) for v in values):
            raise ValueError("labels or values do not match the columns")
        self._seal()
        self.series.extend(labels)
        self.points.extend(points)
        self._chunks.append((np.asarray(hours, dtype=np.int64), [np.asarray(v, dtype=np.float64) for v in values]))
        self._rows += len(hours)

    def _seal(self) -> None:
        """The points added one series at a time, as a chunk of arrays (so chunks keep the series' order)."""
        if not self._hours:
            return
        try:
            hours = np.array(self._hours, dtype=np.int64)
        except OverflowError:
            raise ValueError("a point's hour is outside any page") from None
        self._chunks.append((hours,
                             [np.array(self._values[f], dtype=np.float64) for f in self.value_fields]))
        self._hours = []
        self._values = {f: [] for f in self.value_fields}

    def add_row(self, row: Any) -> None:
        self.add(tuple(getattr(row, n) for n in self.label_fields), [epoch_seconds(row.hour_utc)],
                 *([getattr(row, n)] for n in self.value_fields))

    def hour_array(self) -> np.ndarray:
        self._seal()
        if len(self._chunks) != 1:
            self._chunks = [(np.concatenate([c[0] for c in self._chunks]) if self._chunks
                             else np.empty(0, dtype=np.int64),
                             [np.concatenate([c[1][i] for c in self._chunks]) if self._chunks
                              else np.empty(0, dtype=np.float64) for i in range(len(self.value_fields))])]
        return self._chunks[0][0]

    def value_array(self, name: str) -> np.ndarray:
        self.hour_array()
        return self._chunks[0][1][self.value_fields.index(name)]

    def label_column(self, name: str) -> np.ndarray:
        i = self.label_fields.index(name)
        per_series = np.empty(len(self.series), dtype=object)
        per_series[:] = [s[i] for s in self.series]
        return np.repeat(per_series, self.points)

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns as NumPy arrays DuckDB scans without a copy per value (strings stay objects)."""
        out = {"hour_s": self.hour_array()}
        for name in self.label_fields:
            out[name] = self.label_column(name)
        for name in self.value_fields:
            out[name] = self.value_array(name)
        return out

    def point_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(points, series): each point's ``series_id``, ``hour_s`` and values; each series' label fields once.

        What the writer inserts (a join on ``series_id``): DuckDB converts each
        series' strings once instead of once per point, and scans the points'
        numbers without converting any (``sql/staging/ingest.sql``).
        """
        ids = np.arange(len(self.series), dtype=np.int64)
        points = {"series_id": np.repeat(ids, self.points), "hour_s": self.hour_array()}
        for name in self.value_fields:
            points[name] = self.value_array(name)
        series: dict[str, np.ndarray] = {"series_id": ids}
        for i, name in enumerate(self.label_fields):
            column = np.empty(len(self.series), dtype=object)
            column[:] = [s[i] for s in self.series]
            series[name] = column
        return points, series

    def rows_per_hour(self) -> Counter[int]:
        hours, counts = np.unique(self.hour_array(), return_counts=True)
        return Counter(dict(zip(hours.tolist(), counts.tolist(), strict=True)))

    def rows(self, cls: type, source: str) -> list[Any]:
        """Back to row objects (``fetch()`` callers and tests)."""
        hours = self.hour_array().tolist()
        values = [self.value_array(v).tolist() for v in self.value_fields]
        out = []
        i = 0
        for labels, n in zip(self.series, self.points, strict=True):
            for _ in range(n):
                out.append(cls(from_epoch(hours[i]), *labels, *(v[i] for v in values), source=source))
                i += 1
        return out


def _value_fields(cls: type, labels: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.name not in labels + ("hour_utc", "source"))


ENERGY_VALUES = _value_fields(EnergyRow, ENERGY_LABEL_FIELDS)                 # ("joules",)
INFERENCE_LABELS = ("node", "cluster", "site_label", "engine", "model", "phase")
INFERENCE_VALUES = _value_fields(InferenceRow, INFERENCE_LABELS)                # energy_joules, tokens
COLLECTOR_ERROR_LABELS = ("node", "cluster", "site_label", "collector", "reason")
COLLECTOR_ERROR_VALUES = _value_fields(CollectorErrorRow, COLLECTOR_ERROR_LABELS)  # ("readings",)


PROMPT_TOKEN_LABELS = ("node", "cluster", "site_label", "engine", "model", "prompt_source")
PROMPT_TOKEN_VALUES = _value_fields(PromptTokenRow, PROMPT_TOKEN_LABELS)           # ("tokens",)


WORKLOAD_VALUES = _value_fields(WorkloadRow, WORKLOAD_LABEL_FIELDS)                # ("joules",)


def energy_columns() -> Columns:
    return Columns(ENERGY_LABEL_FIELDS, ENERGY_VALUES)


def inference_columns() -> Columns:
    return Columns(INFERENCE_LABELS, INFERENCE_VALUES)


def collector_error_columns() -> Columns:
    return Columns(COLLECTOR_ERROR_LABELS, COLLECTOR_ERROR_VALUES)


def prompt_token_columns() -> Columns:
    return Columns(PROMPT_TOKEN_LABELS, PROMPT_TOKEN_VALUES)


def workload_columns() -> Columns:
    return Columns(WORKLOAD_LABEL_FIELDS, WORKLOAD_VALUES)


@dataclass
class TelemetryBatch:
    """Some rows of a page of hours, any of the three tables (one answer of the store, or a whole fetch)."""

    energy: Columns = field(default_factory=energy_columns)
    inference: Columns = field(default_factory=inference_columns)
    collector_errors: Columns = field(default_factory=collector_error_columns)
    prompt_tokens: Columns = field(default_factory=prompt_token_columns)
    workload: Columns = field(default_factory=workload_columns)

    @classmethod
    def from_telemetry(cls, telemetry: Telemetry) -> TelemetryBatch:
        out = cls()
        for r in telemetry.energy:
            out.energy.add_row(r)
        for i in telemetry.inference:
            out.inference.add_row(i)
        for c in telemetry.collector_errors:
            out.collector_errors.add_row(c)
        for p in telemetry.prompt_tokens:
            out.prompt_tokens.add_row(p)
        for w in telemetry.workload:
            out.workload.add_row(w)
        return out

    def extend_telemetry(self, telemetry: Telemetry, source: str) -> None:
        """Append this batch's rows, as row objects, to ``telemetry``."""
        telemetry.energy.extend(self.energy.rows(EnergyRow, source))
        telemetry.inference.extend(self.inference.rows(InferenceRow, source))
        telemetry.collector_errors.extend(self.collector_errors.rows(CollectorErrorRow, source))
        telemetry.prompt_tokens.extend(self.prompt_tokens.rows(PromptTokenRow, source))
        telemetry.workload.extend(self.workload.rows(WorkloadRow, source))
