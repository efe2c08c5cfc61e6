"""Rebound guard: how much of each team's, model's or site's monthly carbon budget is used.

Efficiency gains invite more usage (the rebound effect); a budget turns the
total, not the per-token figure, into something teams see burn down. What
counts: location-based Scope 2 + Scope 1 + Scope 3 (embodied, upstream) for
teams and sites (a team's figures are its workloads' shares of their nodes,
from the exporter's workload series and the config's ``teams:`` rules, never a
label on device series), location-based Scope 2 of inference energy for models (see
``sql/queries/plan/budgets.sql``). ``wattfleet serve`` publishes the budgets of
its config with :func:`budget_burn_for` as catalog CARBON_BUDGET /
CARBON_BUDGET_USED (grams, labels scope_owner and period); the dashboards'
burn-rate rule and alert read those two series.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from wattfleet.aggregator.config.model import Budget
from wattfleet.aggregator.store.database import sql_text
from wattfleet.core import catalog

UTC = timezone.utc


@dataclass(frozen=True)
class BudgetBurn:
    owner_kind: str  # team | model | site
    owner: str
    month: date
    budget_kg: float
    used_kg: float
    rollup_rows: int = 0  # how many rollup rows the used figure sums (0: nothing ran)

    @property
    def scope_owner(self) -> str:
        return f"{self.owner_kind}:{self.owner}"

    @property
    def period(self) -> str:
        return f"{self.month.year:04d}-{self.month.month:02d}"

    @property
    def used_ratio(self) -> float | None:
        return self.used_kg / self.budget_kg if self.budget_kg > 0 else None

    def projected_kg(self, now: datetime) -> float:
        """Used so far scaled to the whole month at the current rate (the month's total when it is over)."""
        start = datetime(self.month.year, self.month.month, 1, tzinfo=UTC)
        end = datetime(self.month.year + (self.month.month == 12), self.month.month % 12 + 1, 1, tzinfo=UTC)
        if now >= end:
            return self.used_kg
        elapsed = (now - start).total_seconds()
        if elapsed <= 0:
            return 0.0
        return self.used_kg * (end - start).total_seconds() / elapsed

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        d = {"scope_owner": self.scope_owner, "period": self.period, "budget_kg": self.budget_kg,
             "used_kg": round(self.used_kg, 6),
             "used_ratio": None if self.used_ratio is None else round(self.used_ratio, 4),
             "rollup_rows": self.rollup_rows}
        if now is not None:
            d["projected_kg"] = round(self.projected_kg(now), 6)
        return d


def budget_burn(budgets: Iterable[Budget], used_g: dict[tuple[str, str, date], float]) -> list[BudgetBurn]:
    """Plain-input form: facility ``Budget`` objects and grams used keyed by (kind, owner, month)."""
    return [BudgetBurn(b.owner_kind, b.owner, b.month, float(b.kg_co2e),
                       used_g.get((b.owner_kind, b.owner, b.month), 0.0) / 1000.0) for b in budgets]


def budget_spend_g(con: Any) -> dict[tuple[str, str, date], tuple[float, int]]:
    """(owner_kind, owner, month) -> (grams counted against a budget, rollup rows summed)."""
    return {(kind, owner, month): (float(used or 0.0), int(n))
            for kind, owner, month, used, n in con.execute(sql_text("queries/plan/budgets.sql#spend")).fetchall()}


def budget_burn_for(con: Any, budgets: Iterable[Budget]) -> list[BudgetBurn]:
    """Burn of the given ``Budget`` objects (e.g. the serving config's) from the monthly rollups."""
    spend = budget_spend_g(con) if con is not None else {}
    out = []
    for b in budgets:
        used, n = spend.get((b.owner_kind, b.owner, b.month), (0.0, 0))
        out.append(BudgetBurn(b.owner_kind, b.owner, b.month, float(b.kg_co2e), used / 1000.0, n))
    return out


def budget_burn_from_store(con: Any) -> list[BudgetBurn]:
    """Every budget in ``dim_budget`` (the config the aggregator last loaded) with its burn."""
    rows = con.execute(sql_text("queries/plan/budgets.sql#budgets")).fetchall()
    return budget_burn_for(con, [Budget(k, o, m, kg) for k, o, m, kg in rows])


def catalog_samples(burns: Iterable[BudgetBurn]) -> list[tuple[str, dict[str, str], float]]:
    """(catalog series, labels, grams) for CARBON_BUDGET and CARBON_BUDGET_USED."""
    out = []
    for b in burns:
        labels = {"scope_owner": b.scope_owner, "period": b.period}
        out.append((catalog.CARBON_BUDGET.series, labels, b.budget_kg * 1000.0))
        out.append((catalog.CARBON_BUDGET_USED.series, labels, b.used_kg * 1000.0))
    return out
