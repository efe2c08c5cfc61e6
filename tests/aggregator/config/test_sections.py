"""Scope 1 sources and embodied carbon entries."""

from __future__ import annotations

import textwrap

from fixtures.agg.facility_text import GOOD, errors


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
