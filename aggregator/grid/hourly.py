"""Grouping of sub-hourly points onto UTC hour keys.

WattTime reports every 5 minutes and the UK API every half hour, while the
aggregator joins energy per hour: the hourly value is the plain mean of the
points that start inside the hour (equal-length intervals, so the mean is
the time-weighted mean).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import TypeVar

from wattfleet.aggregator.grid.timeutil import floor_hour

T = TypeVar("T")


def group_by_hour(points: Iterable[tuple[datetime, T]]) -> dict[datetime, list[T]]:
    out: dict[datetime, list[T]] = defaultdict(list)
    for when, item in points:
        out[floor_hour(when)].append(item)
    return dict(sorted(out.items()))


def mean(values: list[float]) -> float:
    return sum(values) / len(values)
