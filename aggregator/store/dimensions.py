"""Load the facility config into the dimension tables the facts are built from."""

from __future__ import annotations

import duckdb

from wattfleet import sql
from wattfleet.aggregator.config.model import FacilityConfig
from wattfleet.aggregator.store.connection import naive_utc
from wattfleet.aggregator.store.transactions import transaction

DIMENSIONS = "staging/dimensions.sql"


def load_dimensions(con: duckdb.DuckDBPyConnection, cfg: FacilityConfig) -> None:
    """Replace the facility dimension tables with ``cfg`` (one transaction)."""
    def insert(block: str, row: list[object]) -> None:
        con.execute(sql.load(f"{DIMENSIONS}#{block}"), row)

    with transaction(con):
        sql.run(con, f"{DIMENSIONS}#clear")
        ord_ = 0
        for site in cfg.sites.values():
            insert("insert_site", [site.name, site.zone, site.pue, site.wue_liters_per_kwh,
                                   site.offsite_water_liters_per_kwh, site.residual_mix_grams_per_kwh,
                                   site.upstream_grams_per_kwh, site.overhead_ratio, site.overhead_watts_per_node,
                                   site.residual_mix_source])
            for m in site.pue_meter:
                insert("insert_site_pue", [site.name, naive_utc(m.start), naive_utc(m.end), m.total_kwh, m.it_kwh])
            for pattern in site.nodes:
                insert("insert_node_pattern", [site.name, pattern, ord_])
                ord_ += 1
        for i in cfg.instruments:
            insert("insert_instrument", [i.name, i.type, i.site, i.market, naive_utc(i.start), naive_utc(i.end),
                                         i.mwh, i.grams_per_kwh, i.hourly_matched])
        for s in cfg.scope1:
            insert("insert_scope1", [s.site, s.kind, s.month, s.quantity, s.kg_co2e_per_unit, s.label])
        for n, e in enumerate(cfg.embodied):
            insert("insert_embodied", [n, e.gpu_model, e.node, e.kg_co2e, e.life_years])
            for a in e.acquisitions:
                insert("insert_embodied_acquisition", [n, a.acquired, a.units, a.site])
        insert("insert_config", [cfg.path, cfg.sha256])
        for b in cfg.budgets:
            insert("insert_budget", [b.owner_kind, b.owner, b.month, b.kg_co2e])
        for n, t in enumerate(cfg.teams):
            insert("insert_team_rule", [n, t.team, t.namespace, t.workload, t.cluster, t.node])
