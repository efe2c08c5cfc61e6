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


def test_teams_rules_name_file_line_and_field(tmp_path):
    text = GOOD + textwrap.dedent("""\
        teams:
          - {team: ml, namespace: "ml-*"}
          - {team: "(idle)", namespace: x}
          - {team: web}
          - {team: db, namespace: ""}
          - {team: ops, pod: "x-*"}
        """)
    problems = errors(tmp_path, text)
    n = len(GOOD.splitlines())
    assert any(f":{n + 3}: teams[1].team: team name '(idle)' must be non-empty and not start with '('" in p
               for p in problems), problems
    assert any(f":{n + 4}: teams[2]: give at least one of namespace, workload, cluster, node" in p
               for p in problems), problems
    assert any(f":{n + 5}: teams[3].namespace: an empty glob matches nothing" in p for p in problems), problems
    assert any(f":{n + 6}: teams[4].pod: unknown key" in p for p in problems), problems
    assert not any("teams[0]" in p for p in problems), problems


def test_teams_rules_in_file_order(tmp_path):
    from wattfleet.aggregator.config.load import load_facility
    from wattfleet.aggregator.config.model import TeamRule

    (tmp_path / "f.yaml").write_text(GOOD + textwrap.dedent("""\
        teams:
          - {team: ml, namespace: "ml-*", cluster: gpu}
          - {team: batch, workload: "slurm/*", node: "hpc-*"}
        """))
    assert load_facility(tmp_path / "f.yaml").teams == [TeamRule("ml", namespace="ml-*", cluster="gpu"),
                                                        TeamRule("batch", workload="slurm/*", node="hpc-*")]
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
