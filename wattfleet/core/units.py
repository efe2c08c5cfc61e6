"""Unit conversions used across wattfleet: one definition of each factor.

Names carry their units (``JOULES_PER_KWH``), so a conversion reads as a
dimensional equation at the call site.
"""

from __future__ import annotations

JOULES_PER_KWH = 3.6e6
"""1 kWh = 1000 W x 3600 s."""
