"""Every panel query and every rule runs against a real Prometheus scraping real endpoints.

Prometheus scrapes (every 200 ms) three real components:

- the exporter on fake hardware (three fake GPUs at 300 W, a fake RAPL tree)
  with its inference collector attached to three fake engines served over HTTP
  in their own formats (TGI on GPU 0, whose forward times split that GPU's
  energy by phase; vLLM on GPU 1, which gives KV-cache usage and unsplit
  prompt tokens; SGLang on GPU 2, whose GPU execution time splits its energy
  and whose prompt tokens are split into computed and cached);
- ``wattfleet serve`` (:class:`AggregatorServer`) over a real DuckDB store
  whose current month was built by ``rebuild_month`` from staged energy,
  hourly grid intensity, a facility config with Scope 1, a PPA, embodied
  carbon and two carbon budgets.

Our recording and alert rules are loaded, the dashboards' variables are
replaced by real values or ``.*``, and each query must return a non-empty,
finite result carrying the labels its legend names.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from typing import Any

import pytest

import paths
from exporter_fixtures import FakePod
from promserver import PrometheusServer
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.outputs.serve import AggregatorServer
from wattfleet.aggregator.store.database import load_dimensions, open_store, rebuild_month
from wattfleet.core import catalog
from wattfleet.core.http import MetricsServer
from wattfleet.dashboards import rules as r
from wattfleet.dashboards.build import ALERTS_FILE, RECORDING_FILE, dashboards, render, write
from wattfleet.dashboards.promql import metric_names
from wattfleet.dashboards.sustainability import NONE_KEPT, kept_stored_hours
from wattfleet.dashboards.validate import dashboard_exprs, iter_panels, rule_exprs, variable_selector
from wattfleet.dashboards.variables import variable_queries
from wattfleet.exporter.inference.attach import attach_inference
from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.sensors.host import HostSensor
from wattfleet.exporter.sensors.nvml import NvmlSensor
from wattfleet.exporter.sensors.rapl import RaplSensor
from wattfleet.sim.fake_nvml import FakeNvml
from wattfleet.sim.fake_powercap import FakePowercap

pytestmark = pytest.mark.prometheus

NODE = {"node": "node-a", "cluster": "c1", "site": "site-a"}
ZONE, PUE, INTENSITY, WUE = "CISO", 1.35, 250.0, 1.8
GPU_WATTS = 300.0
TGI_MODEL = "tgi-model"
# The TGI engine's per-second rates: busy fractions of wall time and tokens.
TGI_PREFILL_BUSY, TGI_DECODE_BUSY = 0.2, 0.6
TGI_PREFILL_TOKENS, TGI_DECODE_TOKENS = 4000.0, 500.0
# The SGLang engine's rates: GPU execution time by forward mode (mixed chunks count as prefill), prompt tokens
# computed and served from its prefix cache.
SG_EXTEND_BUSY, SG_MIXED_BUSY, SG_DECODE_BUSY = 0.2, 0.1, 0.5
SG_COMPUTED, SG_CACHED, SG_DECODE = 3000.0, 1000.0, 600.0
GPUS = 3
FIXTURES = paths.FIXTURES / "inference"
# What Grafana would substitute; $__range stays short because the data is seconds old.
MACROS = {"$__rate_interval": "5s", "$__range": "30s", "$__interval_ms": "1000", "$__interval": "1s"}


class FakeEngine:
    """An engine's /metrics in its own format; counters grow with wall time from ``values(t)``."""

    def __init__(self, fixture: str, values: Callable[[float], dict[str, float]]) -> None:
        template, started = Template((FIXTURES / fixture).read_text()), time.monotonic()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                now = values(time.monotonic() - started)
                body = template.substitute({k: repr(float(v)) for k, v in now.items()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metrics"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def tgi_values(t: float) -> dict[str, float]:
    return {"requests_in": 2 * t, "requests": 2 * t, "prefill_calls": 10 * t, "decode_calls": 100 * t,
            "prefill_s": TGI_PREFILL_BUSY * t, "decode_s": TGI_DECODE_BUSY * t,
            "prompt": TGI_PREFILL_TOKENS * t, "gen": TGI_DECODE_TOKENS * t}


def sglang_values(t: float) -> dict[str, float]:
    return {"compute": SG_COMPUTED * t, "hit": SG_CACHED * t, "decode": SG_DECODE * t, "extend": SG_EXTEND_BUSY * t,
            "mixed": SG_MIXED_BUSY * t, "dec": SG_DECODE_BUSY * t, "requests": 2 * t}


def vllm_values(t: float) -> dict[str, float]:
    return {"start": 1.75e9, "prompt0": 3000 * t, "prompt1": 1000 * t, "gen0": 300 * t, "gen1": 100 * t,
            "stop0": t, "length0": 0.5 * t, "stop1": 0.5 * t, "prefill_s0": 0.5 * t, "decode_s0": 4 * t}


class Exporter:
    """The exporter as ``wattfleet exporter`` wires it: RAPL, NVML, host, inference and workload collectors."""

    def __init__(self, root: Path, engines: Path) -> None:
        self.powercap = FakePowercap(root, sockets=2)
        self.nvml = FakeNvml.with_gpus(GPUS, watts=GPU_WATTS)
        self.sampler = Sampler([RaplSensor(root), NvmlSensor(self.nvml), HostSensor(estimate=False)], NODE,
                               interval=0.1)
        self.inference = attach_inference(self.sampler, engines)
        # Pod ml/train holds GPU 0 and uses half a CPU in its cgroup; the rest of the node is idle or system.
        self.pod = FakePod(root.parent / "cgroups", self.sampler, self.nvml.gpus[0].uuid)
        self.powercap.start_writer(0.01)
        self.sampler.start()
        self.server = MetricsServer("127.0.0.1:0", lambda: self.sampler.snapshot)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.sampler.stop()
        self.inference.close()
        self.powercap.stop_writer()
        self.pod.stop()


FACILITY = """version: 1
sites:
  - name: $site
    zone: $zone
    grid: {source: static, path: intensity.csv}
    pue: $pue
    wue_liters_per_kwh: $wue
    offsite_water_liters_per_kwh: 3.1
    residual_mix_grams_per_kwh: 410
    upstream_grams_per_kwh: 35
    nodes: ["node-*"]
scope1:
  diesel:
    - {site: $site, month: $month, liters: 40}
instruments:
  - {name: ppa, type: ppa, site: $site, start: $month-01, end: 2100-01-01, mwh: 5, grams_per_kwh: 0}
embodied:
  - {gpu_model: "*H100*", kg_co2e: 164, life_years: 4}
budgets:
  - {team: ml, month: $month, kg_co2e: 500}
  - {model: $model, month: $month, kg_co2e: 200}
"""


def aggregator_store(root: Path) -> AggregatorServer:
    """A store whose current month holds one hour of the node's energy, built as ``aggregate`` builds it."""
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    month = f"{hour.year:04d}-{hour.month:02d}"
    (root / "intensity.csv").write_text(f"zone,grams_per_kwh\n{ZONE},{INTENSITY}\n")
    (root / "facility.yaml").write_text(Template(FACILITY).substitute(
        site=NODE["site"], zone=ZONE, pue=PUE, wue=WUE, month=month, model=TGI_MODEL))
    cfg = load_facility(root / "facility.yaml")
    con = open_store(root / "wattfleet.duckdb")
    try:
        load_dimensions(con, cfg)
        for signal, grams in (("average", INTENSITY), ("marginal", 700.0)):
            con.execute("INSERT INTO stg_grid_intensity VALUES (?, ?, ?, ?, NULL, 'static', false, NULL)",
                        [ZONE, hour, signal, grams])
        for device, component, domain, model, joules in (("0", "gpu", "gpu", "NVIDIA H100 80GB HBM3", 3600 * 600.0),
                                                         ("0", "cpu", "package", None, 3600 * 240.0)):
            con.execute("INSERT INTO stg_energy_hourly VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'measured', ?, "
                        "'prometheus')", [hour, NODE["node"], NODE["cluster"], NODE["site"], device, component,
                                          domain, model, joules])
        con.execute("INSERT INTO ingest_watermark VALUES ('prometheus', ?, now())", [hour])
        rebuild_month(con, date(hour.year, hour.month, 1))
    finally:
        con.close()
    return AggregatorServer(root / "wattfleet.duckdb", cfg, "127.0.0.1", 0, refresh_seconds=3600)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, Exporter]]:
    root = tmp_path_factory.mktemp("stack")
    tgi, vllm = FakeEngine("tgi.txt", tgi_values), FakeEngine("vllm_v1.txt", vllm_values)
    sglang = FakeEngine("sglang_forward_execution.txt", sglang_values)
    engines = root / "engines.yaml"
    engines.write_text(f"- engine: tgi\n  url: {tgi.url}\n  gpus: ['0']\n  model: {TGI_MODEL}\n"
                       f"- engine: vllm\n  url: {vllm.url}\n  gpus: ['1']\n"
                       f"- engine: sglang\n  url: {sglang.url}\n  gpus: ['2']\n")
    (root / "sysfs").mkdir()
    exporter = Exporter(root / "sysfs", engines)
    (root / "agg").mkdir()
    aggregator = aggregator_store(root / "agg")
    aggregator.start()
    out = root / "build"
    write(out, render(r.RuleConfig(rate_window="2s")))  # 10 scrapes: rates are exact within seconds
    targets = [f"127.0.0.1:{exporter.server.port}", f"127.0.0.1:{aggregator.port}"]
    try:
        with PrometheusServer(targets, scrape_interval="200ms",
                              rule_files=[out / RECORDING_FILE, out / ALERTS_FILE]) as prom:
            # Recording rules need two scrapes of rate windows before the last rule has data.
            prom.wait_for(r.NODE_CARBON_RATE, timeout=30)
            prom.wait_for(r.INFERENCE_CARBON_RATE, timeout=30)
            prom.wait_for(r.BUDGET_BURN_RATE, timeout=30, min_results=2)
            time.sleep(3.0)  # a few seconds of history for 5 s rate windows and subqueries
            yield prom, exporter
    finally:
        aggregator.stop()
        exporter.stop()
        tgi.stop()
        vllm.stop()
        sglang.stop()


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
def test_every_panel_query_returns_data(stack: tuple[PrometheusServer, Exporter], selection: str) -> None:
    prom, _ = stack
    failures = []
    for dashboard, title, kind, expr, legend in QUERIES:
        q = substitute(expr, SELECTIONS[selection])
        try:
            _check_result(prom.query(q), q, legend, kind)
        except (AssertionError, RuntimeError, OSError) as exc:
            failures.append(f"{dashboard} / {title}: {exc}")
    assert not failures, "\n".join(failures)


def test_time_series_panels_draw_lines(stack: tuple[PrometheusServer, Exporter]) -> None:
    """Grafana runs time-series targets as range queries: each must give a matrix with points."""
    prom, _ = stack
    end = time.time()
    failures = []
    for dashboard, title, kind, expr, _legend in QUERIES:
        if kind != "timeseries":
            continue
        q = substitute(expr, SELECTIONS["all"])
        try:
            data = prom.api("query_range", query=q, start=end - 2, end=end, step=0.5)
            assert data["resultType"] == "matrix" and data["result"], f"no series for {q}"
            for series in data["result"]:
                points = [float(v) for _, v in series["values"]]
                assert points and all(math.isfinite(v) for v in points), f"{q}: {series}"
        except (AssertionError, RuntimeError, OSError) as exc:
            failures.append(f"{dashboard} / {title}: {exc}")
    assert not failures, "\n".join(failures)


def test_variable_queries_find_the_fake_node(stack: tuple[PrometheusServer, Exporter]) -> None:
    prom, _ = stack
    expected = {"cluster": {"c1"}, "site": {"site-a"}, "node": {"node-a"}, "gpu": {str(g) for g in range(GPUS)}}
    for var, query in variable_queries().items():
        label = query.rsplit(",", 1)[1].strip(" )")
        selector = substitute(variable_selector(query), SELECTIONS["all"])
        found = set(prom.api(f"label/{label}/values", **{"match[]": selector}))
        assert found == expected[var], (var, found)


def test_every_series_the_dashboards_read_is_published(stack: tuple[PrometheusServer, Exporter]) -> None:
    """Not only named in the catalog: a running exporter or ``serve`` really publishes it."""
    prom, _ = stack
    names = {n for d in dashboards().values() for e in dashboard_exprs(d) for n in metric_names(e)}
    names |= {n for e in rule_exprs(r.recording_rules() + r.alerting_rules()) for n in metric_names(e)}
    # Error and rejection counters are labelled by reason and appear with the first error or rejection
    # (healthy fake hardware and well-behaved fake engines have none);
    # their panel falls back to zero lines (checked by test_every_panel_query_returns_data). Likewise serve's
    # kept-window series appear with the first window an ingest run kept as stored (a healthy store has none;
    # tests/aggregator/ingest/test_recorded_guard.py has serve publish them); the Sustainability panel draws a
    # zero line until then (test_no_kept_hours_draw_one_zero_line; tests/dashboards/test_rules.py evaluates it
    # with kept hours).
    names -= {catalog.COLLECTOR_ERRORS.series, catalog.INFERENCE_REJECTED.series, catalog.AGGREGATOR_LAST_KEPT.series,
              catalog.AGGREGATOR_KEPT_WINDOWS.series}
    missing = sorted(n for n in names if not prom.query(f'count({{__name__="{n}"}})'))
    assert not missing, f"read by a panel or rule but published by nothing: {missing}"


def test_recording_rules_all_produce_series(stack: tuple[PrometheusServer, Exporter]) -> None:
    prom, _ = stack
    for name in r.recording_rule_names():
        assert prom.query(name), f"recording rule {name} produced nothing"


def _value(prom: PrometheusServer, expr: str) -> float:
    (series,) = prom.query(expr)
    return float(series["value"][1])


def test_live_figures_match_the_fake_hardware(stack: tuple[PrometheusServer, Exporter]) -> None:
    """2 GPUs x 300 W + 2 packages x 120 W + 2 dram x 20 W = 880 W; core/uncore (20 W each) never counted.

    Absolute rates move with scheduling jitter on a busy CI machine (10 %);
    the ratios come from one rule group's single evaluation and are exact:
    PUE and intensity each applied once, the marginal signal never used.
    """
    prom, _ = stack
    it_watts = GPUS * GPU_WATTS + 2 * 120 + 2 * 20
    assert _value(prom, r.SITE_IT_POWER) == pytest.approx(it_watts, rel=0.1)
    assert _value(prom, f"{r.NODE_FACILITY_POWER} / ignoring(zone) {r.NODE_IT_POWER}") == pytest.approx(PUE)
    assert _value(prom, f"{r.NODE_CARBON_RATE} / ignoring(zone) {r.NODE_IT_POWER}") == \
        pytest.approx(PUE * INTENSITY / 3.6e6)
    assert _value(prom, f"{r.NODE_WATER_RATE} / ignoring(zone) {r.NODE_IT_POWER}") == pytest.approx(WUE / 3.6e6)
    assert _value(prom, r.SITE_CARBON_RATE) == pytest.approx(it_watts * PUE * INTENSITY / 3.6e6, rel=0.1)


def test_phase_panels_match_the_engine_and_the_gpu(stack: tuple[PrometheusServer, Exporter]) -> None:
    """GPU 0 (300 W) runs TGI: 20 % of the time in prefill at 4000 tok/s, 60 % in decode at 500 tok/s."""
    from wattfleet.dashboards.inference import joules_per_token

    prom, _ = stack

    def tgi(expr: str) -> float:
        (series,) = [s for s in prom.query(substitute(expr, SELECTIONS["all"])) if s["metric"]["engine"] == "tgi"]
        assert series["metric"]["model"] == TGI_MODEL
        return float(series["value"][1])

    prefill, decode = tgi(joules_per_token("prefill")), tgi(joules_per_token("decode"))
    assert prefill == pytest.approx(GPU_WATTS * TGI_PREFILL_BUSY / TGI_PREFILL_TOKENS, rel=0.15)
    assert decode == pytest.approx(GPU_WATTS * TGI_DECODE_BUSY / TGI_DECODE_TOKENS, rel=0.15)
    # All of GPU 0's energy (prefill + decode + idle) is the engine's: carbon rate = 300 W x PUE x intensity.
    carbon = _value(prom, f'sum({r.INFERENCE_CARBON_RATE}{{engine="tgi"}})')
    assert carbon == pytest.approx(GPU_WATTS * PUE * INTENSITY / 3.6e6, rel=0.15)


def test_prompt_panels_match_the_engines(stack: tuple[PrometheusServer, Exporter]) -> None:
    """SGLang splits its prompt tokens (3000 computed + 1000 cached tok/s): hit ratio 25 %, and its prefill
    energy (GPU 2's 300 W x (extend + mixed) busy share) per computed token; vLLM's page has no split: absent."""
    from wattfleet.dashboards.inference import cache_hit_ratio, joules_per_computed_prefill_token

    prom, _ = stack

    def by_engine(expr: str) -> dict[str, float]:
        return {s["metric"]["engine"]: float(s["value"][1]) for s in prom.query(substitute(expr, SELECTIONS["all"]))}

    hit = by_engine(cache_hit_ratio())
    assert set(hit) == {"sglang"} and hit["sglang"] == pytest.approx(SG_CACHED / (SG_COMPUTED + SG_CACHED), rel=0.1)
    per_computed = by_engine(joules_per_computed_prefill_token())
    assert set(per_computed) == {"sglang"}  # TGI and vLLM do not split: no figure, never a guessed one
    busy = SG_EXTEND_BUSY + SG_MIXED_BUSY  # share of wall time in prefill forwards (mixed chunks included)
    assert per_computed["sglang"] == pytest.approx(GPU_WATTS * busy / SG_COMPUTED, rel=0.15)
    sources = {(s["metric"]["engine"], s["metric"]["source"]) for s in prom.query(r.INFERENCE_PROMPT_RATE)}
    assert {("sglang", "computed"), ("sglang", "cached"), ("vllm", "unsplit"), ("tgi", "unsplit")} <= sources


def test_aggregator_panels_read_what_serve_published(stack: tuple[PrometheusServer, Exporter]) -> None:
    """Sustainability figures are the store's month-to-date rollups, summed, never recomputed."""
    prom, _ = stack
    it_joules = 3600 * (600.0 + 240.0)
    energy = {s["metric"]["kind"]: float(s["value"][1]) for s in prom.query(catalog.ROLLUP_ENERGY.series)}
    assert energy["facility"] == pytest.approx(energy["it"] * PUE)
    assert energy["it"] >= it_joules  # plus the site's unmetered-overhead line, if any
    scopes = {s["metric"]["scope"]: float(s["value"][1]) for s in prom.query(catalog.ROLLUP_EMISSIONS.series)}
    assert scopes["scope2_location"] == pytest.approx(energy["facility"] / 3.6e6 * INTENSITY)
    assert scopes["scope1"] == pytest.approx(40 * 2.68 * 1000)
    burn = {s["metric"]["scope_owner"]: float(s["value"][1]) for s in prom.query(r.BUDGET_BURN_RATE)}
    assert burn == {"team:ml": 0.0, f"model:{TGI_MODEL}": 0.0}  # the store does not change during the test


def test_no_kept_hours_draw_one_zero_line(stack: tuple[PrometheusServer, Exporter]) -> None:
    """The store kept no hour: serve publishes no kept series, the panel one zero line (not "No data")."""
    prom, _ = stack
    assert not prom.query(catalog.AGGREGATOR_KEPT_WINDOWS.series)
    (series,) = prom.query(kept_stored_hours())
    assert series["metric"] == NONE_KEPT and float(series["value"][1]) == 0


def test_idle_gpus_raise_the_idle_burn_alert_as_pending(stack: tuple[PrometheusServer, Exporter]) -> None:
    """The fake GPUs draw 300 W at 0 % utilization: the alert's condition holds (pending, `for` 1h)."""
    prom, _ = stack
    alerts = prom.api("alerts")["alerts"]
    idle = [a for a in alerts if a["labels"]["alertname"] == "WattfleetGpuIdlePowerBurn"]
    assert {a["labels"]["gpu"] for a in idle} == {str(g) for g in range(GPUS)}
    assert all(a["state"] == "pending" for a in idle)
    # A healthy stack raises nothing else: targets up, collectors working, intensity fresh, node accounted.
    # GPUs 1 and 2 are held by no pod (600 W): the unallocated-power alert is pending too (`for` 2h).
    unallocated = [a for a in alerts if a["labels"]["alertname"] == "WattfleetUnallocatedGpuPower"]
    assert [a["state"] for a in unallocated] == ["pending"]
    assert {a["labels"]["alertname"] for a in alerts} == {"WattfleetGpuIdlePowerBurn", "WattfleetUnallocatedGpuPower"}


def test_a_metric_missing_from_the_catalog_fails_the_scan() -> None:
    from wattfleet.dashboards.validate import unknown_metrics
    bad = unknown_metrics([f"sum(rate({catalog.GPU_ENERGY.series}[5m])) / wattfleet_gpu_energy_jules_total"],
                          r.recording_rule_names())
    assert list(bad.values()) == [{"wattfleet_gpu_energy_jules_total"}]



def test_workload_power_adds_up_to_the_node(stack: tuple[PrometheusServer, Exporter]) -> None:
    """Workload energy adds up to the node's, scrape for scrape; pod ml/train has all of GPU 0's."""
    prom, _ = stack
    one = lambda expr: float(prom.query(expr)[0]["value"][1])  # noqa: E731
    at = f"{time.time() - 1:.3f}"  # one instant for every query below: the same scrapes in every window

    def rate(selector: str) -> float:
        return float(prom.query(f"sum(rate({selector}[2s]))", float(at))[0]["value"][1])

    workload = catalog.WORKLOAD_ENERGY.series
    assert rate(f'{workload}{{component="gpu"}}') == pytest.approx(rate(catalog.GPU_ENERGY.series), rel=1e-6)
    assert rate(f'{workload}{{component="gpu",namespace="ml",pod="train"}}') == pytest.approx(
        rate(f'{catalog.GPU_ENERGY.series}{{gpu="0"}}'), rel=1e-6)
    # CPU: the workload counters lag the package counters by the interval in which CPU times are read first.
    assert rate(f'{workload}{{component="cpu"}}') == pytest.approx(
        rate(f'{catalog.CPU_ENERGY.series}{{domain="package"}}'), rel=0.2)
    assert one(f'sum({r.NODE_WORKLOAD_POWER}{{component="cpu",namespace="ml"}})') > 0
