"""The value check the ingest tests hand to sinks: PrometheusSource's rule, raising a test's own error.

NaN is no energy (0); anything else not finite and >= 0 stops with :class:`Refused`, naming the
series and the point, so a test can compare the two parse paths' refusals message for message.
"""

from __future__ import annotations

import math
from typing import Any


class Refused(Exception):
    """A value the check refused."""


def strict_check(value: Any, labels: dict[str, str], ts: float) -> float:
    """As PrometheusSource._energy_value: NaN is no energy, anything else not finite and >= 0 stops."""
    v = float(value)
    v = v if v == v else 0.0
    if not math.isfinite(v) or v < 0:
        raise Refused(f"{sorted(labels.items())} at {ts}: {value}")
    return v
