"""Scope 1 sources and embodied carbon entries."""

from __future__ import annotations

import hashlib
import textwrap
from datetime import date

from fixtures.agg.facility_text import GOOD, errors, write
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.config.model import Acquisition


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


def test_embodied_acquisitions_are_read_with_their_site(tmp_path):
    text = GOOD + textwrap.dedent("""\
        embodied:
          - gpu_model: "*H100*"
            kg_co2e: 164
            life_years: 4
            acquisitions:
              - {date: 2026-03-02, units: 16, site: s1}
              - {date: 2026-10-20, units: 8}
        """)
    cfg = load_facility(write(tmp_path, text))
    (e,) = cfg.embodied
    assert e.acquisitions == (Acquisition(date(2026, 3, 2), 16, "s1"), Acquisition(date(2026, 10, 20), 8, None))
    assert len(cfg.sha256) == 64 and cfg.sha256 == hashlib.sha256(text.encode()).hexdigest()


def test_bad_acquisitions_name_file_line_and_field(tmp_path):
    text = GOOD + textwrap.dedent("""\
        embodied:
          - gpu_model: "*H100*"
            kg_co2e: 164
            life_years: 4
            acquisitions:
              - {date: 2026-13-02, units: 16}
              - {date: 2026-10-20, units: 2.5, site: nowhere}
              - {units: 0, when: 2026-01-01}
          - {node: "a-*", kg_co2e: 1500, life_years: 5, acquisitions: {date: 2026-01-01, units: 1}}
        """)
    problems = errors(tmp_path, text)
    want = [":22: embodied[0].acquisitions[0].date: must be a date YYYY-MM-DD, got '2026-13-02'",
            ":23: embodied[0].acquisitions[1].units: must be a whole number of units >= 1, got 2.5",
            ":23: embodied[0].acquisitions[1].site: unknown site 'nowhere'",
            ":24: embodied[0].acquisitions[2].when: unknown key",
            ":24: embodied[0].acquisitions[2]: missing required field 'date'",
            ":24: embodied[0].acquisitions[2].units: must be a whole number of units >= 1, got 0",
            ":25: embodied[1].acquisitions: must be a list"]
    for w in want:
        assert any(w in p for p in problems), (w, problems)


def test_residual_mix_source_needs_a_factor(tmp_path):
    text = GOOD.replace("    nodes: [\"a-*\"]\n", "    nodes: [\"a-*\"]\n    residual_mix_source: AIB 2025\n")
    assert any(":9: sites[0].residual_mix_source: names a source but no residual_mix_grams_per_kwh" in p
               for p in errors(tmp_path, text))
    text = text.replace("    residual_mix_source", "    residual_mix_grams_per_kwh: 410\n    residual_mix_source")
    cfg = load_facility(write(tmp_path, text))
    assert cfg.sites["s1"].residual_mix_source == "AIB 2025"
