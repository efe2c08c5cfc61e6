"""The per-source loader table: one loader per known source, raw rows with their zone and origin."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fixtures.grid_api import FIXTURES
from wattfleet.aggregator.grid.loaders import LOADERS, Window
from wattfleet.aggregator.grid.spec import SOURCES
from wattfleet.aggregator.grid.static import make_table

UTC = timezone.utc
T0 = datetime(2022, 1, 5, tzinfo=UTC)


def window(hours: int = 2) -> Window:
    end = T0 + timedelta(hours=hours)
    return Window(T0, end, T0 - timedelta(days=1), end, FIXTURES, make_table(None, None))


def test_every_source_has_a_loader() -> None:
    assert tuple(LOADERS) == SOURCES


def test_eia930_rows_are_raw_with_empty_hours_noted() -> None:
    got = LOADERS["eia930"]({"source": "eia930", "path": "eia930_CISO_2022-01-04_05.csv", "zone": "CISO",
                             "timestamps": "hour_start"}, window(24))  # labels read as starts: T0 + 10 h is empty
    assert got.zone == "CISO" and got.origin == str(FIXTURES / "eia930_CISO_2022-01-04_05.csv")
    assert got.signal == "average"
    assert T0 + timedelta(hours=10) not in {r.hour_utc for r in got.rows}  # not filled here
    assert any("2022-01-05T10:00:00+00:00 has no intensity" in n for n in got.notes), got.notes


def test_static_uses_the_site_table_or_the_default() -> None:
    own = LOADERS["static"]({"source": "static", "zone": "SITE-X", "path": "static-intensity.csv"}, window())
    assert own.origin == str(FIXTURES / "static-intensity.csv") and [r.grams_per_kwh for r in own.rows] == [310.5] * 2
    default = LOADERS["static"]({"source": "static", "zone": "CA-QC"}, window())
    assert default.origin == "static table" and default.zone == "CA-QC" and len(default.rows) == 2


def test_electricitymaps_labels_are_hour_starts_unless_the_spec_says_ends() -> None:
    """docs/accounting.md 5.1: the row labelled 01:00 is the hour from 01:00 by default, from 00:00 when the
    spec says ``timestamps: hour_ending`` (a relabelled file)."""
    spec = {"source": "electricitymaps", "path": "em_FR_2022_hourly_excerpt.csv", "zone": "FR"}
    starts = {r.hour_utc: r.grams_per_kwh for r in LOADERS["electricitymaps"](spec, window()).rows}
    ends = {r.hour_utc: r.grams_per_kwh
            for r in LOADERS["electricitymaps"]({**spec, "timestamps": "hour_ending"}, window()).rows}
    first = datetime(2022, 1, 1, tzinfo=UTC)
    assert starts[first] == 52.34 and starts[first + timedelta(hours=1)] == 50.01
    assert ends[first - timedelta(hours=1)] == 52.34 and ends[first] == 50.01
    assert {h - timedelta(hours=1) for h in starts} == set(ends)
