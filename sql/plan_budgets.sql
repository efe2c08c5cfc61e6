-- Carbon budgets the aggregator last loaded from the facility config (budget_burn.py). Params: none.
SELECT owner_kind, owner, month, kg_co2e FROM dim_budget ORDER BY month, owner_kind, owner;
