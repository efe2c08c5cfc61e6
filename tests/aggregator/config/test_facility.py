"""Facility config validation: every error names file, line and field."""

from __future__ import annotations

from paths import FACILITY_EXAMPLE
from shared_data import CISO

import textwrap
from pathlib import Path

import pytest

from wattfleet.aggregator.config.facility import FacilityConfigError, load_facility

EXAMPLE = FACILITY_EXAMPLE

GOOD = """\
version: 1
sites:
  - name: s1
    zone: CISO
    grid: {source: eia930, path: CISO.csv}
    pue: 1.2
    wue_liters_per_kwh: 1.0
    nodes: ["a-*"]
  - name: s2
    zone: CISO
    grid: {source: eia930, path: CISO.csv}
    pue: 1.4
    wue_liters_per_kwh: 1.0
instruments:
  - {name: p1, type: ppa, site: s1, start: 2026-01-01, end: 2026-07-01, mwh: 10, grams_per_kwh: 0}
  - {name: r1, type: rec, market: CISO, start: 2026-07-01, end: 2027-01-01, mwh: 10, grams_per_kwh: 0}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "facility.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(FacilityConfigError) as exc:
        load_facility(write(tmp_path, text))
    return exc.value.problems


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


def test_negative_grid_factor_and_unknown_site(tmp_path):
    text = GOOD + "  - {name: x, type: go, site: nope, start: 2025-01-01, end: 2025-02-01, mwh: 1, grams_per_kwh: -3}\n"
    problems = errors(tmp_path, text)
    assert any(":17: instruments[2].site: unknown site 'nope'" in p for p in problems), problems
    assert any(":17: instruments[2].grams_per_kwh: must be >= 0" in p for p in problems), problems


def test_pue_meter_below_one_and_missing_default(tmp_path):
    text = GOOD.replace("pue: 1.4", "pue:\n      meter:\n        - {month: 2026-10, total_kwh: 90, it_kwh: 100}")
    problems = errors(tmp_path, text)
    assert any(":14: sites[1].pue.meter[0].total_kwh: PUE below 1" in p for p in problems), problems
    assert any("sites[1].pue.default" in p and "required" in p for p in problems), problems


def test_pue_meter_csv(tmp_path):
    (tmp_path / "meter.csv").write_text("month,total_kwh,it_kwh\n2026-10,150,100\n2026-11,80,100\n")
    text = GOOD.replace("pue: 1.4", "pue: {default: 1.4, meter_csv: meter.csv}")
    problems = errors(tmp_path, text)
    assert problems == [f"{tmp_path / 'meter.csv'}:3: total_kwh: PUE below 1: total 80 kWh < IT 100 kWh "
                        "(facility energy includes IT)"]


def test_scope1_and_embodied(tmp_path):
    text = GOOD + textwrap.dedent("""\
        scope1:
          diesel:
            - {site: s1, month: 2026-10, liters: 100}
            - {site: s1, month: 2026-13, liters: 100}
          refrigerant:
            - {site: s2, month: 2026-10, kg: -1, gwp: 2088}
        embodied:
          - {gpu_model: "*H100*", kg_co2e: 164, life_years: 0}
        """)
    problems = errors(tmp_path, text)
    assert any(":20: scope1.diesel[1].month: must be a month YYYY-MM" in p for p in problems), problems
    assert any(":22: scope1.refrigerant[0].kg: must be >= 0" in p for p in problems), problems
    assert any(":24: embodied[0].life_years: must be > 0" in p for p in problems), problems


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
    from wattfleet.aggregator.grid.sources import zone_check
    if not CISO.exists():
        pytest.skip("the example's EIA-930 file (../shared/data) is not next to this checkout")
    cfg = load_facility(EXAMPLE, zone_check=zone_check)
    assert cfg.sites["arn1"].grid["source"] == "static"
