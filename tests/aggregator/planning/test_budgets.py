"""Budget burn on plain inputs (the store wiring is in test_disclosure_store.py, serving in test_api.py)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from wattfleet.aggregator.config.model import Budget
from wattfleet.aggregator.planning.budgets import BudgetBurn, budget_burn

UTC = timezone.utc


def test_budget_burn_plain_inputs():
    budgets = [Budget("team", "ml", date(2026, 10, 1), 500.0), Budget("model", "m", date(2026, 10, 1), 0.0)]
    burns = budget_burn(budgets, {("team", "ml", date(2026, 10, 1)): 250_000.0})
    assert burns[0] == BudgetBurn("team", "ml", date(2026, 10, 1), 500.0, 250.0)
    assert burns[0].used_ratio == 0.5 and burns[0].period == "2026-10" and burns[0].scope_owner == "team:ml"
    assert burns[1].used_kg == 0 and burns[1].used_ratio is None
    assert burns[0].projected_kg(datetime(2026, 9, 30, tzinfo=UTC)) == 0.0
    j = burns[0].to_json(datetime(2026, 10, 11, 8, tzinfo=UTC))  # 248 of 744 h: a third of October
    assert j["projected_kg"] == pytest.approx(750.0, rel=1e-3)
