"""argparse value types shared by the aggregator's commands (aggregate, report, plan, disclose).

A bad value is an argparse usage error naming the flag, before any file or
database is opened.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from wattfleet.aggregator.config.dates import parse_instant

PREVIOUS_MONTH = "previous"


def iso_instant(text: str) -> datetime:
    """A date or ISO timestamp (naive = UTC) as an aware UTC datetime."""
    try:
        return parse_instant(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date or timestamp (e.g. 2026-10-01T00:00Z)") from err


def month(text: str) -> str:
    """YYYY-MM, or ``previous`` (resolved when the command runs: the monthly CronJob's last complete month)."""
    if text != PREVIOUS_MONTH and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a month YYYY-MM (or 'previous')")
    return text


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP field name (RFC 9110 section 5.1)


def header(text: str) -> tuple[str, str]:
    """'Name: value' -> (name, value): ``--prometheus.header``; no line breaks (header injection)."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _TOKEN.match(name):
        raise argparse.ArgumentTypeError(f"expected 'Name: value' with an HTTP header name, got {text!r}")
    if any(c in value for c in "\r\n\0"):
        raise argparse.ArgumentTypeError(f"header {name}: the value must not hold line breaks")
    return name, value


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer type for argparse with bounds: ``--page-hours 0`` is a usage error naming the flag,
    not a traceback from deep in the run, and ``--retries -1`` not a run that never tries."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"{low}..{high}"
            raise argparse.ArgumentTypeError(f"{value} is out of range ({bound})")
        return value
    parse.__name__ = "integer"  # argparse names the type in its "invalid ... value" message
    return parse


def positive_seconds(text: str) -> float:
    """A finite duration above 0 s: a deadline of 0 (or NaN) fails every request it bounds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds above 0")
    return value


def key_value(text: str) -> tuple[str, str]:
    """KEY=VALUE -> (key, value), both stripped: ``--cost SITE=PRICE``, ``--label LABEL=GLOB``."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), v.strip()


def resolve_month(text: str, now: datetime | None = None) -> str:
    """``previous`` -> the last complete UTC month before ``now``; YYYY-MM unchanged."""
    if text != PREVIOUS_MONTH:
        return text
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    last = now.replace(day=1) - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"
