"""Market instruments: scope (site or market), values, and no MWh claimed twice."""

from __future__ import annotations

from fixtures.agg.facility_text import GOOD, errors


def test_negative_grid_factor_and_unknown_site(tmp_path):
    text = GOOD + "  - {name: x, type: go, site: nope, start: 2025-01-01, end: 2025-02-01, mwh: 1, grams_per_kwh: -3}\n"
    problems = errors(tmp_path, text)
    assert any(":17: instruments[2].site: unknown site 'nope'" in p for p in problems), problems
    assert any(":17: instruments[2].grams_per_kwh: must be >= 0" in p for p in problems), problems
