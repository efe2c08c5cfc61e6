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


def test_grid_timestamps_and_implausible_settings_are_checked_with_file_and_line(tmp_path):
    """docs/accounting.md 5.1 and 5.3: the hour-label convention and what to do with implausible hours."""
    text = GOOD.replace(S1_GRID, "grid: {source: eia930, path: CISO.csv, timestamps: hour_begin, "
                                 "implausible: drop}\n    pue: 1.2", 1)
    problems = errors(tmp_path, text)
    assert any(":5: sites[0].grid.timestamps: must be one of ['hour_start', 'hour_ending'], got 'hour_begin'" in p
               for p in problems), problems
    assert any("sites[0].grid.implausible: must be one of ['flag', 'fill', 'refuse'], got 'drop'" in p
               for p in problems), problems
    text = GOOD.replace(S1_GRID, "grid: {source: static, implausible: refuse}\n    pue: 1.2", 1)
    assert any("sites[0].grid.implausible: not a setting of grid source 'static'" in p
               for p in errors(tmp_path, text))
    ok = GOOD.replace(S1_GRID, "grid: {source: eia930, path: CISO.csv, timestamps: hour_start, "
                               "implausible: refuse}\n    pue: 1.2", 1)
    ok = ok.replace("grid: {source: eia930, path: CISO.csv}\n    pue: 1.4",
                    "grid: {source: eia930, path: CISO.csv, timestamps: hour_start, implausible: refuse}\n    pue: 1.4")
    grid = load_facility(write(tmp_path, ok)).sites["s1"].grid
    assert (grid["timestamps"], grid["implausible"]) == ("hour_start", "refuse")


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


def test_two_sites_in_one_zone_with_different_grid_settings_are_an_error(tmp_path):
    """Intensity is stored per zone: the second site's settings used to be dropped silently (grid_load.py)."""
    text = GOOD.replace("    grid: {source: eia930, path: CISO.csv}\n    pue: 1.4",
                        "    grid: {source: eia930, path: CISO.csv, fill: [linear]}\n    pue: 1.4")
    problems = errors(tmp_path, text)
    path = tmp_path / "facility.yaml"
    assert problems == [f"{path}:11: sites[1].grid: site 's2' is in zone CISO like site 's1' ({path}:5: sites[0].grid) "
                        "but its grid settings differ; a zone has one hourly intensity, so its sites must give the "
                        "same grid settings"]


def test_sites_sharing_a_zone_may_spell_the_same_settings_differently(tmp_path):
    """The same file by a relative and an absolute path, the zone given or defaulted: one setting, accepted;
    a planning-only ``marginal`` source may differ per site."""
    text = GOOD.replace("    grid: {source: eia930, path: CISO.csv}\n    pue: 1.4",
                        f"    grid: {{source: eia930, path: {tmp_path / 'CISO.csv'}, zone: CISO,\n"
                        "           marginal: {source: static}, timestamps: hour_ending, implausible: flag}\n"
                        "    pue: 1.4")  # the defaults written out
    cfg = load_facility(write(tmp_path, text))
    assert cfg.sites["s1"].grid["path"] == cfg.sites["s2"].grid["path"] == str(tmp_path / "CISO.csv")
