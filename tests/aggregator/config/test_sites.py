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


def test_grid_basis_is_checked_with_file_and_line(tmp_path):
    """docs/accounting.md 5.5: what the source's intensity counts, one of direct | lifecycle."""
    text = GOOD.replace(S1_GRID, "grid: {source: eia930, path: CISO.csv, basis: combustion}\n    pue: 1.2", 1)
    assert any(":5: sites[0].grid.basis: must be one of ['direct', 'lifecycle'], got 'combustion'" in p
               for p in errors(tmp_path, text))
    text = GOOD.replace(S1_GRID, "grid: {source: electricitymaps, zone: CISO, basis: lifecycle}\n    pue: 1.2", 1)
    assert any(":5: sites[0].grid.basis: is 'lifecycle' but emission_factor requests 'direct'" in p
               for p in errors(tmp_path, text))


def test_flat_upstream_on_an_unsplittable_lifecycle_source_is_refused(tmp_path):
    """A life-cycle intensity holds the upstream already: a flat upstream factor on top counts it twice. The
    error is at the factor's line, the site's own or the defaults' it falls back to."""
    eia = "grid: {source: eia930, path: CISO.csv}"
    em = "grid: {source: electricitymaps, zone: CISO, emission_factor: lifecycle}"
    flat = GOOD.replace("version: 1\n", "version: 1\ndefaults: {upstream_grams_per_kwh: 35}\n")
    problems = errors(tmp_path, flat.replace(eia, em))
    assert any(":2: defaults.upstream_grams_per_kwh: 35 g/kWh of upstream on top of grid source "
               "'electricitymaps', whose intensity is life-cycle" in p and "counted twice" in p
               for p in problems), problems
    own = GOOD.replace(eia, "grid: {source: static, basis: lifecycle}").replace(
        "    pue: 1.2", "    upstream_grams_per_kwh: 20\n    pue: 1.2", 1)
    assert any(":6: sites[0].upstream_grams_per_kwh: 20 g/kWh of upstream on top of grid source 'static'" in p
               for p in errors(tmp_path, own))
    # accepted: the same source without a flat factor (disclosed as a life-cycle Scope 2), a direct source
    # with one, and EIA-930 with one (split hour by hour, the split replacing the flat factor)
    load_facility(write(tmp_path, GOOD.replace(eia, em)))
    load_facility(write(tmp_path, flat.replace(eia, em.replace("lifecycle", "direct"))))
    assert load_facility(write(tmp_path, flat)).sites["s1"].upstream_grams_per_kwh == 35.0
