"""The normalised shape every grid-intensity source produces.

Each loader (EIA-930 CSV, Electricity Maps, WattTime, UK Carbon Intensity,
static table) returns a list of :class:`IntensityRow`, one per zone, hour
and signal, so that DuckDB staging sees one format whatever the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Signal = Literal["average", "marginal"]


@dataclass(frozen=True)
class IntensityRow:
    """Carbon intensity of one zone for the hour starting at ``hour_utc``.

    ``hour_utc`` is timezone-aware UTC, truncated to the hour. ``cfe_ratio``
    is the carbon-free share of generation when the source gives the fuel mix
    (EIA-930, Electricity Maps), else None. ``filled`` marks a value made by
    ``fill_rule`` for an hour the source lacked; nothing is filled silently.
    ``implausible`` says why the source's own data makes the hour's value
    doubtful (e.g. its generation mix, :mod:`.implausible`); None when it
    passed the checks or none could be made.
    """

    zone: str
    hour_utc: datetime
    grams_per_kwh: float
    signal: Signal = "average"
    source: str = ""
    cfe_ratio: float | None = None
    filled: bool = False
    fill_rule: str | None = None
    implausible: str | None = None
