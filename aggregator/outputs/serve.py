"""``wattfleet serve``: aggregator figures as Prometheus metrics.

Publishes grid intensity per zone, PUE and WUE per site, the latest
month-to-date rollups, carbon budgets with their burn, the ingest
watermark and the hours the ingest guard kept as stored (and answers
``GET /api/plan``, the planner as JSON), so that Prometheus and Grafana
can compute live carbon (energy rate x intensity x PUE) next to the
accounted figures. The database is re-read periodically with a short
read-only connection, so ``aggregate`` can keep writing; when the file is
busy the previous exposition is served.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
from prometheus_client.core import Metric as PromMetric

from wattfleet import sql
from wattfleet.aggregator.config.model import FacilityConfig
from wattfleet.aggregator.planning.api import PLAN_PATH, plan_route
from wattfleet.aggregator.planning.budgets import budget_burn_for
from wattfleet.aggregator.planning.estimators import site_pue_at
from wattfleet.aggregator.store.rows import one_row
from wattfleet.core import catalog
from wattfleet.core.exposition import Snapshot, render_families
from wattfleet.core.http import MetricsServer
from wattfleet.core.units import JOULES_PER_KWH
from wattfleet.core.webconfig import WebConfig

log = logging.getLogger(__name__)

EXPOSITION = "queries/serve/exposition.sql"


def _family(metric: catalog.Metric) -> PromMetric:
    return PromMetric(metric.name, metric.help, metric.kind)


def _add(family: PromMetric, metric: catalog.Metric, labels: dict[str, str], value: float) -> None:
    assert set(labels) == set(metric.all_labels), (metric.name, labels)
    family.add_sample(metric.series, labels, float(value))


def render(con: duckdb.DuckDBPyConnection | None, cfg: FacilityConfig, now: datetime | None = None) -> bytes:
    """The exposition for the current state of the database and config."""
    now = now or datetime.now(timezone.utc)
    now_naive = now.astimezone(timezone.utc).replace(tzinfo=None)
    fams = {m.name: _family(m) for m in catalog.by_component("aggregator")}

    for site in cfg.sites.values():
        labels = {"site": site.name, "zone": site.zone}
        _add(fams[catalog.SITE_INFO.name], catalog.SITE_INFO, labels, 1)
        _add(fams[catalog.SITE_PUE.name], catalog.SITE_PUE, labels, site_pue_at(site, now)[0])
        _add(fams[catalog.SITE_WUE.name], catalog.SITE_WUE, labels, site.wue_liters_per_kwh)

    if con is not None:
        rows = con.execute(sql.load(f"{EXPOSITION}#grid_intensity"), {"now": now_naive}).fetchall()
        newest: dict[str, datetime] = {}
        for zone, signal, grams, source, hour in rows:
            _add(fams[catalog.GRID_INTENSITY.name], catalog.GRID_INTENSITY,
                 {"zone": zone, "signal": signal, "source": source or ""}, grams)
            newest[zone] = max(newest.get(zone, hour), hour)
        for zone, hour in sorted(newest.items()):
            _add(fams[catalog.GRID_INTENSITY_AGE.name], catalog.GRID_INTENSITY_AGE, {"zone": zone},
                 max((now_naive - hour).total_seconds(), 0.0))

        latest = one_row(con, sql.load(f"{EXPOSITION}#latest_month"))[0]
        if latest is not None:
            period = latest.strftime("%Y-%m")
            for (site, it, fac, s1, s2l, s2m, s3e, s3u, won, woff, cfe) in con.execute(
                    sql.load(f"{EXPOSITION}#site_month"), {"period_start": latest}).fetchall():
                for kind, kwh in (("it", it), ("facility", fac)):
                    _add(fams[catalog.ROLLUP_ENERGY.name], catalog.ROLLUP_ENERGY,
                         {"site": site, "kind": kind, "period": period}, (kwh or 0) * JOULES_PER_KWH)
                for scope, g in (("scope1", s1), ("scope2_location", s2l), ("scope2_market", s2m),
                                 ("scope3", (s3e or 0) + (s3u or 0))):
                    _add(fams[catalog.ROLLUP_EMISSIONS.name], catalog.ROLLUP_EMISSIONS,
                         {"site": site, "scope": scope, "period": period}, g or 0)
                for kind, litres in (("onsite", won), ("offsite", woff)):
                    _add(fams[catalog.ROLLUP_WATER.name], catalog.ROLLUP_WATER,
                         {"site": site, "kind": kind, "period": period}, litres or 0)
                if fac:
                    _add(fams[catalog.ROLLUP_CFE.name], catalog.ROLLUP_CFE, {"site": site, "period": period},
                         (cfe or 0) / fac)

        for b in budget_burn_for(con, cfg.budgets):  # rebound guard: budgets and burn (budget_burn.py)
            labels = {"scope_owner": b.scope_owner, "period": b.period}
            _add(fams[catalog.CARBON_BUDGET.name], catalog.CARBON_BUDGET, labels, b.budget_kg * 1000)
            _add(fams[catalog.CARBON_BUDGET_USED.name], catalog.CARBON_BUDGET_USED, labels, b.used_kg * 1000)

        wm = one_row(con, sql.load(f"{EXPOSITION}#watermark"))[0]
        if wm is not None:
            _add(fams[catalog.AGGREGATOR_WATERMARK.name], catalog.AGGREGATOR_WATERMARK, {},
                 wm.replace(tzinfo=timezone.utc).timestamp())

        # hours the ingest guard kept as stored (recorded_guard.record_kept): visible after the batch run ends
        for source, mode, keeps, last in con.execute(sql.load(f"{EXPOSITION}#kept_hours")).fetchall():
            labels = {"source": source, "mode": mode}
            _add(fams[catalog.AGGREGATOR_KEPT_WINDOWS.name], catalog.AGGREGATOR_KEPT_WINDOWS, labels, keeps)
            _add(fams[catalog.AGGREGATOR_LAST_KEPT.name], catalog.AGGREGATOR_LAST_KEPT, labels,
                 last.replace(tzinfo=timezone.utc).timestamp())

    families = [f for f in fams.values() if f.samples]
    return render_families(families)


class AggregatorServer:
    """Re-renders from the database every ``refresh_seconds`` and serves the last rendering."""

    def __init__(self, db: str | Path, cfg: FacilityConfig, host: str = "0.0.0.0", port: int = 9881,
                 refresh_seconds: float = 60.0, web: WebConfig | None = None) -> None:
        self.db, self.cfg, self.refresh_seconds = str(db), cfg, refresh_seconds
        self._snapshot: Snapshot | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.http = MetricsServer(f"{host}:{port}", lambda: self._snapshot, web, title="wattfleet serve")
        self.http.routes.exact[PLAN_PATH] = plan_route(cfg)  # the planner as JSON, next to /metrics

    @property
    def port(self) -> int:
        return self.http.httpd.server_address[1]

    def refresh(self) -> None:
        con = None
        try:
            if Path(self.db).exists():
                con = duckdb.connect(self.db, read_only=True)
                con.execute("SET TimeZone = 'UTC'")
            body = render(con, self.cfg)
        except duckdb.Error as exc:  # busy or not yet migrated: keep serving the last good rendering
            log.warning("cannot read %s: %s", self.db, exc)
            if self._snapshot is None:
                self._snapshot = Snapshot(render(None, self.cfg), time.time())
            return
        finally:
            if con is not None:
                con.close()
        self._snapshot = Snapshot(body, time.time())

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.refresh()

    def start(self) -> None:
        self.refresh()
        self.http.start()
        self._thread = threading.Thread(target=self._run, name="wattfleet-serve-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.http.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
