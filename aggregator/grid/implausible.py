"""Hours whose own generation mix says their intensity cannot be right (docs/accounting.md 5.3).

A source that gives the generation mix beside the intensity (EIA-930) lets two
checks be made on each hour, without any outside data:

* **Total generation far below the zone's usual**: an hour whose total net
  generation is under ``MIN_GENERATION_RATIO`` of the median hour of the same
  file is a reporting fault (a balancing authority that submitted a few plants,
  not its system), not a real grid state. Its intensity then describes those few
  plants. The PJM file of the same dataset has five such hours (287 to 325 MWh
  against a median of 93,831 MWh, at 43-47 g/kWh); the lowest hour of the seven
  shipped zones is at 0.42 of its zone's median (AZPS).
* **Intensity outside what the mix allows**: the hour's intensity must lie
  between the mix-weighted lowest and highest emission factors of its fuels
  (``FACTOR_BOUNDS``, wide enough for both direct and life-cycle factors), with
  ``MIX_TOLERANCE`` either side. An intensity outside that range cannot come
  from that mix: the two columns disagree.

Both are flags on the hour, never silent corrections; the grid spec's
``implausible`` setting says whether a flagged hour is kept (``flag``), treated
as a gap (``fill``) or stops the load (``refuse``).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

MIN_GENERATION_RATIO = 0.1
MIX_TOLERANCE = 0.1

# gCO2e per kWh generated, (lowest, highest) plausible for each EIA-930 fuel column, direct or life-cycle:
# carbon-free fuels emit nothing directly and up to tens of g/kWh over their life cycle (IPCC AR5 WG3
# Annex III medians: wind 11, solar 41, hydro 24, nuclear 12); gas plants from efficient combined cycle
# (about 350 direct) to old peakers (about 700); coal about 800 to 1,200; oil about 550 to 1,000;
# OTH (biomass, geothermal, storage, unknown) anything from 0 to 1,000.
FACTOR_BOUNDS: dict[str, tuple[float, float]] = {
    "WND": (0.0, 50.0), "SUN": (0.0, 50.0), "WAT": (0.0, 50.0), "NUC": (0.0, 50.0),
    "NG": (300.0, 700.0), "COL": (700.0, 1300.0), "OIL": (500.0, 1200.0), "OTH": (0.0, 1000.0),
}


def total_generation_mwh(fuels: Sequence[float | None]) -> float:
    """Net generation of the hour, negative values (net consumption) and missing fuels counted as 0."""
    return sum(max(0.0, v) for v in fuels if v is not None)


def median_generation_mwh(totals: Sequence[float]) -> float | None:
    """The zone's usual hour: the median total over the file (None for an empty file)."""
    return statistics.median(totals) if totals else None


def implausible_reason(columns: Sequence[str], fuels: Sequence[float | None], grams_per_kwh: float,
                       median_mwh: float | None) -> str | None:
    """Why the hour is implausible, or None. ``columns`` name the values in ``fuels``."""
    total = total_generation_mwh(fuels)
    if median_mwh and total < MIN_GENERATION_RATIO * median_mwh:
        return (f"total generation {total:,.0f} MWh is below {MIN_GENERATION_RATIO:g} x the zone's median "
                f"{median_mwh:,.0f} MWh")
    if total <= 0.0:
        return None  # no mix to judge the intensity by
    low = high = 0.0
    for col, v in zip(columns, fuels, strict=True):
        lo, hi = FACTOR_BOUNDS.get(col, (0.0, 1000.0))
        share = max(0.0, v or 0.0) / total
        low += share * lo
        high += share * hi
    if not low * (1 - MIX_TOLERANCE) <= grams_per_kwh <= high * (1 + MIX_TOLERANCE):
        return f"intensity {grams_per_kwh:.1f} g/kWh is outside {low:.0f}..{high:.0f} g/kWh that its mix allows"
    return None
