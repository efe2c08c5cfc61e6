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
    24 points costs one tuple, not 24 references per field.
    """

    def __init__(self, label_fields: tuple[str, ...], value_fields: tuple[str, ...]) -> None:
        self.label_fields = label_fields
        self.value_fields = value_fields
        self.hour_s: list[int] = []
        self.series: list[tuple[Any, ...]] = []   # label values per series
        self.points: list[int] = []               # points per series
        self.values: dict[str, list[float]] = {f: [] for f in value_fields}

    def __len__(self) -> int:
        return len(self.hour_s)

    def add(self, labels: tuple[Any, ...], hours: list[int], *values: list[float]) -> None:
        """One series: its label fields once, its hours and values point by point."""
        if len(labels) != len(self.label_fields) or len(values) != len(self.value_fields):
            raise ValueError("labels or values do not match the columns")
        self.series.append(labels)
        self.points.append(len(hours))
        self.hour_s.extend(hours)
        for name, vs in zip(self.value_fields, values, strict=True):
            self.values[name].extend(vs)

    def add_row(self, row: Any) -> None:
        self.add(tuple(getattr(row, n) for n in self.label_fields), [epoch_seconds(row.hour_utc)],
                 *([getattr(row, n)] for n in self.value_fields))

    def label_column(self, name: str) -> np.ndarray:
        i = self.label_fields.index(name)
        per_series = np.empty(len(self.series), dtype=object)
        per_series[:] = [s[i] for s in self.series]
        return np.repeat(per_series, self.points)

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns as NumPy arrays DuckDB scans without a copy per value (strings stay objects)."""
        out = {"hour_s": np.fromiter(self.hour_s, dtype=np.int64, count=len(self.hour_s))}
        for name in self.label_fields:
            out[name] = self.label_column(name)
        for name in self.value_fields:
            out[name] = np.array(self.values[name], dtype=np.float64)
        return out

    def rows_per_hour(self) -> Counter[int]:
        return Counter(self.hour_s)

    def rows(self, cls: type, source: str) -> list[Any]:
        """Back to row objects (``fetch()`` callers and tests)."""
        out = []
        i = 0
        for labels, n in zip(self.series, self.points, strict=True):
            for _ in range(n):
                values = (self.values[v][i] for v in self.value_fields)
                out.append(cls(from_epoch(self.hour_s[i]), *labels, *values, source=source))
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
