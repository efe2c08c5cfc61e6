"""Unit conversions used across wattfleet: one definition of each factor.

Names carry their units (``JOULES_PER_KWH``), so a conversion reads as a
dimensional equation at the call site.
"""

from __future__ import annotations

JOULES_PER_KWH = 3.6e6
"""1 kWh = 1000 W x 3600 s."""

GRAMS_PER_TONNE = 1e6
GRAMS_PER_KG = 1e3
MICROJOULES_PER_JOULE = 1e6
MILLIJOULES_PER_JOULE = 1e3
HERTZ_PER_MHZ = 1e6


def kwh_to_joules(kwh: float) -> float:
    return kwh * JOULES_PER_KWH


def joules_to_kwh(joules: float) -> float:
    return joules / JOULES_PER_KWH
