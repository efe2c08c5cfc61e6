"""Instants and months as the facility config writes them, always as aware UTC.

Config periods are [start, end) in UTC; a naive timestamp or a bare date is
read as UTC so that one file means the same thing on every machine.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

UTC = timezone.utc


def parse_instant(text: str) -> datetime:
    """YYYY-MM, YYYY-MM-DD or ISO timestamp (naive = UTC) -> aware UTC datetime."""
    s = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}", s):
        s += "-01"
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def month_end(d: date) -> date:
    """First day of the month after ``d``'s: the exclusive end of its month."""
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def utc_midnight(d: date) -> datetime:
    """Midnight UTC at the start of day ``d``."""
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
