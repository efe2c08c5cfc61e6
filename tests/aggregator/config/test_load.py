"""Loading a facility config: the shipped example, a good file, and every problem named by file, line and field."""

from __future__ import annotations

import pytest

from fixtures.agg.facility_text import GOOD, errors, write
from paths import FACILITY_EXAMPLE as EXAMPLE
from shared_data import CISO
from wattfleet.aggregator.config.checker import FacilityConfigError
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.grid.sources import zone_check


def test_example_loads():
    cfg = load_facility(EXAMPLE)
    assert set(cfg.sites) == {"sfo1", "arn1"}
    assert cfg.sites["sfo1"].pue_meter[0].pue == pytest.approx(1.33)
    assert cfg.scope1[0].kg_co2e == pytest.approx(400 * 2.68)
    assert cfg.site_for_node("sfo1-gpu-7") == "sfo1"
    assert cfg.site_for_node("elsewhere", "arn1") == "arn1"
    assert cfg.site_for_node("elsewhere", "nowhere") is None


def test_good_config(tmp_path):
    cfg = load_facility(write(tmp_path, GOOD))
    assert cfg.sites["s1"].grid["zone"] == "CISO"
    assert cfg.sites["s1"].grid["path"] == str(tmp_path / "CISO.csv")
    assert [i.hourly_matched for i in cfg.instruments] == [True, False]


@pytest.mark.parametrize("old,new,line,field,words", [
    ("pue: 1.2", "pue: 0.9", 6, "sites[0].pue", "must be >= 1"),
    ("wue_liters_per_kwh: 1.0\n    nodes", "wue_liters_per_kwh: -1\n    nodes", 7, "sites[0].wue_liters_per_kwh",
     ">= 0"),
    ("zone: CISO\n    grid: {source: eia930, path: CISO.csv}\n    pue: 1.2",
     "zone: ciso!\n    grid: {source: eia930, path: CISO.csv}\n    pue: 1.2", 4, "sites[0].zone", "unknown zone"),
    ("market: CISO", "market: ERCO", 16, "instruments[1].market", "unknown zone"),
    ("mwh: 10, grams_per_kwh: 0}\n  - {name: r1", "mwh: -5, grams_per_kwh: 0}\n  - {name: r1", 15,
     "instruments[0].mwh", "negative"),
    ("start: 2026-07-01", "start: 2026-06-01", 16, "instruments[1]", "overlaps 'p1'"),
    ("    nodes: [\"a-*\"]", "    nodes: [\"a-*\"]\n    colour: blue", 9, "sites[0].colour", "unknown key"),
    ("type: rec", "type: bond", 16, "instruments[1].type", "unknown instrument type"),
])
def test_rejected(tmp_path, old, new, line, field, words):
    assert old in GOOD
    problems = errors(tmp_path, GOOD.replace(old, new, 1))
    path = tmp_path / "facility.yaml"
    assert any(p.startswith(f"{path}:{line}: {field}") and words in p for p in problems), problems


def test_not_yaml_and_missing_file(tmp_path):
    problems = errors(tmp_path, "sites: [\n  {name: a\n")
    assert "not valid YAML" in problems[0] and str(tmp_path) in problems[0]
    with pytest.raises(FacilityConfigError, match="cannot read"):
        load_facility(tmp_path / "absent.yaml")


def test_missing_required_and_bad_version(tmp_path):
    problems = errors(tmp_path, "version: 2\nsites:\n  - {name: a, zone: CISO}\n")
    assert any(":1: version: unsupported version 2" in p for p in problems), problems
    assert any(":3: sites[0]: missing required field 'pue'" in p for p in problems), problems
    assert any("missing required field 'grid'" in p for p in problems), problems


def test_zone_check_hook(tmp_path):
    with pytest.raises(FacilityConfigError, match=r":4: sites\[0\].zone: unknown zone 'CISO': not in file"):
        load_facility(write(tmp_path, GOOD), zone_check=lambda spec, zone: "not in file")


def test_duplicate_key(tmp_path):
    problems = errors(tmp_path, GOOD.replace("    pue: 1.2\n", "    pue: 1.2\n    pue: 1.3\n", 1))
    assert "field 'pue' given twice" in problems[0] and ":7:" in problems[0]


def test_example_passes_the_grid_zone_check():
    """`wattfleet aggregate` checks zones against the grid sources: the shipped example must pass."""
    if not CISO.exists():
        pytest.skip("the example's EIA-930 file (../shared/data) is not next to this checkout")
    cfg = load_facility(EXAMPLE, zone_check=zone_check)
    assert cfg.sites["arn1"].grid["source"] == "static"
