"""One site entry: its grid spec (zone, relative path, replay year) and unmetered overhead."""

from __future__ import annotations

from fixtures.agg.facility_text import GOOD, errors, write
from wattfleet.aggregator.config.load import load_facility

S1_GRID = "grid: {source: eia930, path: CISO.csv}\n    pue: 1.2"


def test_grid_spec_problems_name_the_field(tmp_path):
    text = GOOD.replace(S1_GRID, "grid: {path: CISO.csv, zone: MISO, replay_year: 1800}\n    pue: 1.2", 1)
    problems = errors(tmp_path, text)
    assert any(":5: sites[0].grid: missing required field 'source'" in p for p in problems), problems
    assert any("sites[0].grid.zone: grid zone 'MISO' differs from the site's zone 'CISO'" in p
               for p in problems), problems
    assert any("sites[0].grid.replay_year: must be a year, got 1800" in p for p in problems), problems


def test_grid_must_be_a_mapping(tmp_path):
    problems = errors(tmp_path, GOOD.replace(S1_GRID, "grid: CISO.csv\n    pue: 1.2", 1))
    assert any("sites[0].grid: must be a mapping" in p for p in problems), problems
    assert any("sites[0]: missing required field 'grid'" in p for p in problems), problems


def test_overhead_is_a_ratio_or_watts_per_node(tmp_path):
    cfg = load_facility(write(tmp_path, GOOD.replace("    nodes:", "    overhead: {watts_per_node: 150}\n    nodes:")))
    assert (cfg.sites["s1"].overhead_ratio, cfg.sites["s1"].overhead_watts_per_node) == (0.0, 150.0)
    assert (cfg.sites["s2"].overhead_ratio, cfg.sites["s2"].overhead_watts_per_node) == (0.0, 0.0)
    problems = errors(tmp_path, GOOD.replace("    nodes:", "    overhead: {ratio: 0.1, watts_per_node: 150}\n"
                                                         "    nodes:"))
    assert any("sites[0].overhead: give exactly one of 'ratio' or 'watts_per_node'" in p for p in problems), problems
