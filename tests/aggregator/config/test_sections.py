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
