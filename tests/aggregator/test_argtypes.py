"""argparse value types of the aggregator's commands: a bad value is a usage error naming it."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

import pytest

from wattfleet.aggregator.argtypes import int_range, iso_instant, key_value, month, positive_seconds, resolve_month
from wattfleet.aggregator.cli import add_aggregate_arguments

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


def test_int_range():
    assert int_range(0)("0") == 0 and int_range(1, 24)("24") == 24
    for bad, text in ((int_range(1), "0"), (int_range(0), "-1"), (int_range(1, 24), "25")):
        with pytest.raises(argparse.ArgumentTypeError, match="out of range"):
            bad(text)
    with pytest.raises(argparse.ArgumentTypeError, match="not an integer"):
        int_range(0)("1.5")


def test_positive_seconds():
    assert positive_seconds("0.5") == 0.5
    for bad in ("0", "-3", "nan", "inf", "soon"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_seconds(bad)


@pytest.mark.parametrize("flag, value", [("--page-hours", "0"), ("--page-hours", "11001"), ("--retries", "-1"),
                                         ("--shard-nodes", "-1"), ("--lookback-hours", "-1"),
                                         ("--query-timeout", "0"), ("--max-response-bytes", "0"),
                                         ("--duckdb-threads", "0"), ("--scrape-interval", "0")])
def test_aggregate_rejects_out_of_range_flags_before_running(flag, value, capsys):
    """Before: --page-hours 0 was a ValueError traceback, --retries -1 a run that never tried."""
    parser = argparse.ArgumentParser(prog="wattfleet aggregate")
    add_aggregate_arguments(parser)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--config", "c.yaml", "--db", "d", "--prometheus", "http://x", flag, value])
    assert exc.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err
