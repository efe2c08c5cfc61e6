"""How much one ``GET /api/plan`` may ask for: the bounds that keep a request's cost small.

``serve`` answers anyone who can reach it, so every input that scales the
work (sites, hours of intensity, ranked starts, text to parse) has a ceiling
here, and a request over one is a 400 naming the parameter, not minutes of
CPU. The defaults fit any real plan: a month of hourly starts for a run of up
to a month, at up to 32 sites.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanLimits:
    """Per-request bounds of ``/api/plan`` and how many plans may run at once."""

    max_query_chars: int = 16384  # the whole query string
    max_value_chars: int = 64  # duration, energy, by, after, mode, top
    max_list_items: int = 1024  # comma-separated items in sites (before de-duplication) and cost
    max_name_chars: int = 128  # one site name
    max_sites: int = 32  # distinct sites planned
    max_duration_hours: float = 31 * 24.0
    max_energy_kwh: float = 1e8  # 100 GWh of IT energy: beyond the largest training runs
    max_price_per_kwh: float = 1e4
    max_starts: int = 31 * 24  # hourly start windows ranked per site
    max_top: int = 1000
    deadline_seconds: float = 20.0  # under the HTTP server's own request deadline (30 s)
    max_concurrent: int = 2  # plans computed at once; the rest get 429
