"""Config instants and months: always aware UTC, whatever the file wrote."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from wattfleet.aggregator.config.dates import month_end, parse_instant, utc_midnight

UTC = timezone.utc


@pytest.mark.parametrize("text, expected", [
    ("2026-10", datetime(2026, 10, 1, tzinfo=UTC)),
    ("2026-10-05", datetime(2026, 10, 5, tzinfo=UTC)),
    ("2026-10-05T06:30", datetime(2026, 10, 5, 6, 30, tzinfo=UTC)),
    ("2026-10-05T06:30Z", datetime(2026, 10, 5, 6, 30, tzinfo=UTC)),
    (" 2026-10-05T08:30+02:00 ", datetime(2026, 10, 5, 6, 30, tzinfo=UTC)),
])
def test_parse_instant_is_utc(text, expected):
    got = parse_instant(text)
    assert got == expected and got.utcoffset() == timedelta(0)


def test_parse_instant_rejects_text():
    with pytest.raises(ValueError):
        parse_instant("October")


def test_month_end_is_the_next_first_day():
    assert month_end(date(2026, 10, 1)) == date(2026, 11, 1)
    assert month_end(date(2026, 12, 15)) == date(2027, 1, 1)
    assert utc_midnight(date(2026, 12, 15)) == datetime(2026, 12, 15, tzinfo=UTC)
