"""UTC hour arithmetic shared by the loaders.

Every source speaks a slightly different ISO-8601 dialect ("...Z",
"...+00:00", "2018-01-20T12:00Z", naive "Datetime (UTC)"); they all end up
here so that rows line up on exactly the same tz-aware UTC hour keys.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

HOUR = timedelta(hours=1)
UTC = timezone.utc


def parse_utc(text: str, naive_is_utc: bool = True) -> datetime:
    """Parse an ISO-8601 timestamp to an aware UTC datetime.

    Raises ValueError for text that is not a timestamp, or for a naive one
    when ``naive_is_utc`` is False.
    """
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        if not naive_is_utc:
            raise ValueError(f"timestamp {text!r} has no UTC offset")
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def require_aware(dt: datetime, name: str) -> datetime:
    """Return ``dt`` in UTC; a naive datetime is refused, never guessed."""
    if not isinstance(dt, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {dt.isoformat()}")
    return dt.astimezone(UTC)


def floor_hour(dt: datetime) -> datetime:
    return dt.replace(minute=0, second=0, microsecond=0)


def ceil_hour(dt: datetime) -> datetime:
    f = floor_hour(dt)
    return f if f == dt else f + HOUR


def hours(start: datetime, end: datetime) -> list[datetime]:
    """Every hour in [start, end); both must already be hour-aligned UTC."""
    out = []
    t = start
    while t < end:
        out.append(t)
        t += HOUR
    return out


def iso_z(dt: datetime) -> str:
    """UTC ISO-8601 with a trailing Z, the form the HTTP APIs expect."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
