"""``flexible:`` entries: every malformed one is an error naming its position."""

from __future__ import annotations

import pytest

from wattfleet.aggregator.config.flexible import ShiftConfigError, parse_flexible
from wattfleet.aggregator.config.model import FlexibleWorkload


@pytest.mark.parametrize("items, match", [
    ({"namespace": "x"}, "must be a list"),
    ([{"namespace": "a", "team": "b"}], "exactly one"),
    ([{"namespace": "a", "window_hours": 0}], "window_hours"),
    ([{"namespace": "a", "allowed_hours_utc": [24]}], "allowed_hours_utc"),
    ([{"namespace": "a", "sites": "x"}], "sites"),
    ([{"namespace": "a", "colour": "green"}], "unknown key"),
])
def test_flexible_config_errors(items, match):
    with pytest.raises(ShiftConfigError, match=match):
        parse_flexible(items)


def test_flexible_errors_name_file_line_and_field():
    def locate(path):
        return "facility.yaml:40: " + ".".join(map(str, path))
    with pytest.raises(ShiftConfigError, match=r"^facility.yaml:40: flexible.0.window_hours: must be a whole"):
        parse_flexible([{"namespace": "a", "window_hours": 1.5}], locate=locate)
    with pytest.raises(ShiftConfigError, match=r"^flexible\[1\]\.sites: must be a list"):
        parse_flexible([{"team": "a"}, {"team": "b", "sites": [1]}])


def test_a_valid_list_becomes_workloads():
    assert parse_flexible([{"team": "data", "window_hours": 6, "allowed_hours_utc": [0, 1], "sites": ["x"]},
                           {"namespace": "batch-*"}]) == [
        FlexibleWorkload("team", "data", 6, frozenset({0, 1}), ("x",)),
        FlexibleWorkload("namespace", "batch-*"),
    ]
