"""Every panel query and every rule runs against a real Prometheus scraping real endpoints.

Prometheus scrapes (every 200 ms) the real exporter on fake hardware (two
fake GPUs at 300 W, a fake RAPL tree) and a second endpoint publishing the
aggregator-side and inference series of the catalog. Our recording and alert
rules are loaded, the dashboards' variables are replaced by real values or
``.*``, and each query must return a non-empty, finite result carrying the
labels its legend names.

TODO(aggregator serve): ``wattfleet.aggregator.serve`` does not exist yet, so
the aggregator series come from :func:`catalog_exposition` (prometheus_client
rendering of the catalog's aggregator metrics). Swap in the real endpoint when
it lands; the inference series stay here until the exporter's inference
collector can run on a fake engine.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any, Iterator

import pytest
from prometheus_client.core import Metric as PromMetric
from prometheus_client.exposition import generate_latest

from exporter_fixtures import FakeNode, start_fake_node
from promserver import PrometheusServer
from wattfleet.dashboards import rules as r
from wattfleet.dashboards.build import ALERTS_FILE, RECORDING_FILE, dashboards, render, write
from wattfleet.dashboards.validate import iter_panels, variable_selector
from wattfleet.dashboards.variables import variable_queries
from wattfleet.exporter import catalog
from wattfleet.exporter.sampler import Snapshot
from wattfleet.exporter.server import MetricsServer

pytestmark = pytest.mark.prometheus

NODE = {"node": "node-a", "cluster": "c1", "site": "site-a"}
ZONE, PUE, INTENSITY, WUE = "CISO", 1.35, 250.0, 1.8
PERIOD = "2026-11"
# What Grafana would substitute; $__range stays short because the data is seconds old.
MACROS = {"$__rate_interval": "5s", "$__range": "30s", "$__interval_ms": "1000", "$__interval": "1s"}


class _Families:
    def __init__(self, families: list[PromMetric]) -> None:
        self.families = families

    def collect(self) -> list[PromMetric]:
        return self.families


def catalog_exposition(started: float) -> bytes:
    """Aggregator- and inference-side catalog series with plausible values; counters grow with time."""
    t = time.monotonic() - started
    site = {"site": NODE["site"], "zone": ZONE}
    engine = {**NODE, "engine": "vllm", "model": "llama-3-70b"}
    values: list[tuple[catalog.Metric, dict[str, str], float]] = [
        (catalog.GRID_INTENSITY, {"zone": ZONE, "signal": "average", "source": "eia930"}, INTENSITY),
        (catalog.GRID_INTENSITY, {"zone": ZONE, "signal": "marginal", "source": "watttime"}, 700.0),
        (catalog.GRID_INTENSITY_AGE, {"zone": ZONE}, 1800.0),
        (catalog.SITE_PUE, site, PUE),
        (catalog.SITE_WUE, site, WUE),
        (catalog.SITE_INFO, site, 1.0),
        (catalog.AGGREGATOR_WATERMARK, {}, time.time() - 3600),
        (catalog.ROLLUP_CFE, {"site": NODE["site"], "period": PERIOD}, 0.42),
        (catalog.CARBON_BUDGET, {"scope_owner": "team:ml", "period": PERIOD}, 500e3),
        (catalog.CARBON_BUDGET_USED, {"scope_owner": "team:ml", "period": PERIOD}, 120e3 + 50.0 * t),
    ]
    for kind, joules in (("it", 3.6e9), ("facility", 4.86e9)):
        values.append((catalog.ROLLUP_ENERGY, {"site": NODE["site"], "kind": kind, "period": PERIOD}, joules))
    for kind, liters in (("onsite", 1800.0), ("offsite", 4000.0)):
        values.append((catalog.ROLLUP_WATER, {"site": NODE["site"], "kind": kind, "period": PERIOD}, liters))
    for scope, grams in (("scope1", 2.7e6), ("scope2_location", 3.1e8), ("scope2_market", 1.2e8),
                         ("scope3", 4.0e7)):
        values.append((catalog.ROLLUP_EMISSIONS, {"site": NODE["site"], "scope": scope, "period": PERIOD}, grams))
    for phase, tokens_per_s, watts in (("prefill", 4000.0, 120.0), ("decode", 500.0, 180.0)):
        values.append((catalog.INFERENCE_TOKENS, {**engine, "phase": phase}, tokens_per_s * t))
        values.append((catalog.INFERENCE_PHASE_BUSY, {**engine, "phase": phase}, 0.5 * t))
        values.append((catalog.INFERENCE_REQUEST_PHASE_SECONDS, {**engine, "phase": phase}, 3.0 * t))
    for phase, watts in (("prefill", 120.0), ("decode", 180.0), (catalog.PHASE_IDLE, 60.0)):
        values.append((catalog.INFERENCE_PHASE_ENERGY,
                       {**engine, "phase": phase, "method": catalog.PHASE_METHOD_TIME}, watts * t))
    values += [
        (catalog.INFERENCE_REQUESTS, engine, 2.0 * t),
        (catalog.INFERENCE_RUNNING, engine, 8.0),
        (catalog.INFERENCE_WAITING, engine, 1.0),
        (catalog.INFERENCE_KV_CACHE, engine, 0.6),
        (catalog.INFERENCE_ENGINE_UP, {**NODE, "engine": "vllm", "endpoint": "http://127.0.0.1:8000/metrics"}, 1.0),
        (catalog.INFERENCE_ENGINE_GPUS, {**engine, "gpu": "0"}, 1.0),
    ]
    families: dict[str, PromMetric] = {}
    for metric, labels, value in values:
        family = families.setdefault(metric.name, PromMetric(metric.name, metric.help, metric.kind))
        family.add_sample(metric.series, labels, value)
    return generate_latest(_Families(list(families.values())))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, FakeNode]]:
    root = tmp_path_factory.mktemp("sysfs")
    node = start_fake_node(root, gpus=2, interval=0.1, **NODE)
    started = time.monotonic()
    side = MetricsServer("127.0.0.1:0", lambda: Snapshot(catalog_exposition(started), time.time()))
    side.start()
    out = tmp_path_factory.mktemp("build")
    write(out, render(r.RuleConfig(rate_window="2s")))  # 10 scrapes: rates are exact within seconds
    targets = [f"127.0.0.1:{node.server.port}", f"127.0.0.1:{side.port}"]
    try:
        with PrometheusServer(targets, scrape_interval="200ms",
                              rule_files=[out / RECORDING_FILE, out / ALERTS_FILE]) as prom:
            # Recording rules need two scrapes of rate windows before the last rule has data.
            prom.wait_for(r.NODE_CARBON_RATE, timeout=30)
            prom.wait_for(r.INFERENCE_CARBON_RATE, timeout=30)
            time.sleep(2.0)  # a few seconds of history for 5 s rate windows and subqueries
            yield prom, node
    finally:
        side.stop()
        node.stop()


def substitute(expr: str, values: dict[str, str]) -> str:
    for macro, value in MACROS.items():
        expr = expr.replace(macro, value)
    for var, value in values.items():
        expr = expr.replace(f"${{{var}}}", value).replace(f"${var}", value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


SELECTIONS = {
    "all": {"cluster": ".*", "site": ".*", "node": ".*", "gpu": ".*"},
    "one node and GPU": {"cluster": "c1", "site": "site-a", "node": "node-a", "gpu": "0"},
}


def panel_queries() -> list[tuple[str, str, str, str, str]]:
    """(dashboard, panel title, panel type, expr, legend) for every target."""
    out = []
    for name, d in dashboards().items():
        for p in iter_panels(d):
            for t in p.get("targets", []):
                out.append((name, p["title"], p["type"], t["expr"], t.get("legendFormat", "")))
    return out


QUERIES = panel_queries()


def _check_result(result: list[dict[str, Any]], expr: str, legend: str, kind: str) -> None:
    assert result, f"empty result for {expr}"
    if kind == "stat" and not legend:
        assert len(result) == 1, f"a single-value stat got {len(result)} series: {expr}"
    for series in result:
        value = float(series["value"][1])
        assert math.isfinite(value), f"{expr} gave {value} for {series['metric']}"
        for label in re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", legend):
            assert label in series["metric"], f"legend label {label!r} missing from {series['metric']} ({expr})"


@pytest.mark.parametrize("selection", sorted(SELECTIONS))
def test_every_panel_query_returns_data(stack: tuple[PrometheusServer, FakeNode], selection: str) -> None:
    prom, _ = stack
    failures = []
    for dashboard, title, kind, expr, legend in QUERIES:
        q = substitute(expr, SELECTIONS[selection])
        try:
            _check_result(prom.query(q), q, legend, kind)
        except (AssertionError, RuntimeError, OSError) as exc:
            failures.append(f"{dashboard} / {title}: {exc}")
    assert not failures, "\n".join(failures)


def test_variable_queries_find_the_fake_node(stack: tuple[PrometheusServer, FakeNode]) -> None:
    prom, _ = stack
    expected = {"cluster": {"c1"}, "site": {"site-a"}, "node": {"node-a"}, "gpu": {"0", "1"}}
    for var, query in variable_queries().items():
        label = query.rsplit(",", 1)[1].strip(" )")
        selector = substitute(variable_selector(query), SELECTIONS["all"])
        found = set(prom.api(f"label/{label}/values", **{"match[]": selector}))
        assert found == expected[var], (var, found)


def test_recording_rules_all_produce_series(stack: tuple[PrometheusServer, FakeNode]) -> None:
    prom, _ = stack
    for name in r.recording_rule_names():
        assert prom.query(name), f"recording rule {name} produced nothing"


def test_live_figures_match_the_fake_hardware(stack: tuple[PrometheusServer, FakeNode]) -> None:
    """2 GPUs x 300 W + 2 packages x 120 W + 2 dram x 20 W = 880 W; core/uncore (20 W each) never counted."""
    prom, _ = stack
    it_watts = 2 * 300 + 2 * 120 + 2 * 20
    it = float(prom.query(r.SITE_IT_POWER)[0]["value"][1])
    assert it == pytest.approx(it_watts, rel=0.05)
    carbon = float(prom.query(r.SITE_CARBON_RATE)[0]["value"][1])
    assert carbon == pytest.approx(it_watts * PUE * INTENSITY / 3.6e6, rel=0.05)
    water = float(prom.query(r.SITE_WATER_RATE)[0]["value"][1])
    assert water == pytest.approx(it_watts * WUE / 3.6e6, rel=0.05)


def test_idle_gpus_raise_the_idle_burn_alert_as_pending(stack: tuple[PrometheusServer, FakeNode]) -> None:
    """The fake GPUs draw 300 W at 0 % utilization: the alert's condition holds (pending, `for` 1h)."""
    prom, _ = stack
    alerts = prom.api("alerts")["alerts"]
    idle = [a for a in alerts if a["labels"]["alertname"] == "WattfleetGpuIdlePowerBurn"]
    assert {a["labels"]["gpu"] for a in idle} == {"0", "1"}
    assert all(a["state"] == "pending" for a in idle)


def test_a_metric_missing_from_the_catalog_fails_the_scan() -> None:
    from wattfleet.dashboards.validate import unknown_metrics
    bad = unknown_metrics([f"sum(rate({catalog.GPU_ENERGY.series}[5m])) / wattfleet_gpu_energy_jules_total"],
                          r.recording_rule_names())
    assert list(bad.values()) == [{"wattfleet_gpu_energy_jules_total"}]
