"""Grid spec checks on their own: source and keys, required fields, numbers, paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.grid.spec import SOURCES, check_spec, need, number, pick, resolve_path


def test_check_spec_returns_the_source() -> None:
    assert check_spec({"source": "watttime", "region": "R", "base_url": "http://x"}) == "watttime"
    assert set(SOURCES) == {"eia930", "electricitymaps", "watttime", "ukcarbon", "static"}


def test_common_keys_are_allowed_for_every_source() -> None:
    for source in SOURCES:
        assert check_spec({"source": source, "zone": "Z", "fill": ["none"], "static_table": {}}) == source


def test_unknown_key_lists_the_allowed_ones() -> None:
    with pytest.raises(GridDataError, match=r"allowed: \['basis', 'fill', 'implausible', 'max_grams_per_kwh', 'path', "
                                             r"'source', 'static_table', 'timestamps', 'zone'\]"):
        check_spec({"source": "eia930", "region": "R"})


def test_fields() -> None:
    assert need({"source": "static", "zone": "FR"}, "zone") == "FR"
    with pytest.raises(GridDataError, match="required for source 'static'"):
        need({"source": "static", "zone": ""}, "zone")
    assert number({}, "timeout_s", 30.0) == 30.0
    with pytest.raises(GridDataError, match="must be an integer >= 0"):
        number({"retries": True}, "retries", 2, integer=True)
    assert pick({"base_url": "u", "zone": "Z"}, "base_url", "token_env") == {"base_url": "u"}


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    assert resolve_path("CISO.csv", tmp_path) == tmp_path / "CISO.csv"
    assert resolve_path("/data/CISO.csv", tmp_path) == Path("/data/CISO.csv")
    assert resolve_path("CISO.csv", None) == Path("CISO.csv")
