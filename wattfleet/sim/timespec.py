"""Spans and instants as people write them on the ``wattfleet simulate`` command line and in fault specs.

Fault specs (``at=2h,for=30m``) and the CLI (``--span 1d``, ``--end
2022-03-01T00:00:00Z``) share one reading of time, so a span means the same
thing wherever it is typed.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone


def parse_duration(text: str, what: str = "duration") -> float:
    """``500ms``, ``60s``, ``15m``, ``6h``, ``30d`` or plain seconds -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*", str(text))
    if not m:
        raise ValueError(f"{what} {text!r} must look like 500ms, 60s, 15m, 6h, 30d or a number of seconds")
    unit = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    return float(m.group(1)) * unit


def parse_time(text: str) -> float:
    """Unix seconds or an ISO 8601 time (UTC when no offset is given)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time {text!r} must be unix seconds or ISO 8601 like 2022-07-01T00:00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()
