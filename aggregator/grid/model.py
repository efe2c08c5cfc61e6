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
    passed the checks or none could be made. ``basis`` says what ``grams_per_kwh`` counts: ``direct``
    (generation/combustion, the Scope 2 basis) or ``lifecycle`` (docs/accounting.md 5.5); None until the
    source's spec states it (:func:`.sources.load_intensity`). ``upstream_grams_per_kwh`` is the part of a
    life-cycle intensity taken out of ``grams_per_kwh`` by :mod:`.basis` (Scope 3 Category 3), so
    ``grams_per_kwh + upstream_grams_per_kwh`` is the source's life-cycle value; None when not split.
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
    basis: str | None = None
    upstream_grams_per_kwh: float | None = None
