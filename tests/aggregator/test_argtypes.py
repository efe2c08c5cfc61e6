"""argparse value types of the aggregator's commands: a bad value is a usage error naming it."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

import pytest

from wattfleet.aggregator.argtypes import iso_instant, key_value, month, resolve_month

UTC = timezone.utc


def test_iso_instant():
    assert iso_instant("2026-10-01T00:00Z") == datetime(2026, 10, 1, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError, match="not an ISO date or timestamp"):
        iso_instant("yesterday")


def test_month_or_previous():
    assert month("2026-10") == "2026-10" and month("previous") == "previous"
    for bad in ("2026-13", "2026-1", "last"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a month YYYY-MM"):
            month(bad)
    assert resolve_month("previous", datetime(2026, 3, 1, tzinfo=UTC)) == "2026-02"


def test_key_value():
    assert key_value(" sfo = 0.12 ") == ("sfo", "0.12")
    assert key_value("model=llama=3") == ("model", "llama=3")
    with pytest.raises(argparse.ArgumentTypeError, match="expected KEY=VALUE"):
        key_value("sfo")
