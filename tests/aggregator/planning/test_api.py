"""`wattfleet serve`: the planner over HTTP (GET /api/plan) and the carbon budget burn it publishes."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fixtures.agg.disclosure_fleet import FACILITY, build
from fixtures.agg.planning_inputs import intensity_rows, two_site_yaml
from promserver import free_port
from shared_data import EIA_DIR as DATA
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.config.model import Budget, FacilityConfig
from wattfleet.aggregator.outputs.serve import AggregatorServer, render
from wattfleet.aggregator.planning.api import PLAN_PATH, plan_http, plan_route
from wattfleet.aggregator.planning.budgets import budget_burn_for
from wattfleet.aggregator.planning.limits import PlanLimits
from wattfleet.aggregator.planning.plan import plan_json
from wattfleet.core import catalog
from wattfleet.core.http import HttpServer
from wattfleet.core.routes import Routes

UTC = timezone.utc
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared EIA-930 data not present")
QUERY = {"duration": "6h", "energy": "1.2MWh", "sites": "sfo,chi", "by": "2026-11-30",
         "after": "2026-11-23T09:10:00Z"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve")
    cfg_path = d / "facility.yaml"
    cfg_path.write_text(two_site_yaml())
    cfg = load_facility(cfg_path)
    srv = AggregatorServer(d / "absent.duckdb", cfg, "127.0.0.1", free_port(), refresh_seconds=3600)
    srv.start()
    yield srv, cfg
    srv.stop()


def get(srv, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}{path}", timeout=30) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


@needs_data
def test_plan_endpoint_over_http_equals_the_cli_plan(server):
    srv, cfg = server
    code, ctype, body = get(srv, "/api/plan?" + urlencode({**QUERY, "top": 3}) + "&cost=sfo:0.12&cost=chi:0.08")
    assert code == 200 and ctype == "application/json"
    j = json.loads(body)
    direct = plan_json(cfg, ["sfo", "chi"], "6h", "1.2MWh", "2026-11-30", earliest="2026-11-23T09:10:00Z", top=3,
                       costs={"sfo": 0.12, "chi": 0.08})
    assert j == direct
    assert len(j["ranked"]) == 3 and j["ranked"][0] == j["best"]
    assert [s["signal"] for s in j["sites"]] == ["average", "average"]  # EIA-930 has no marginal signal
    assert {s["mode"] for s in j["sites"]} == {"history"}
    # cost per site = IT kWh x PUE x price
    by_site = {s["site"]: s for s in j["sites"]}
    assert by_site["sfo"]["best"]["cost"] == pytest.approx(1200 * 1.2 * 0.12)
    assert by_site["chi"]["best"]["cost"] == pytest.approx(1200 * 1.1 * 0.08)
    # brute force over the replayed real hours: every 6 h window of each site, IT kWh x PUE x mean g/kWh
    from datetime import timedelta

    from wattfleet.aggregator.grid.sources import load_intensity
    first = datetime(2026, 11, 23, 10, tzinfo=UTC)
    expected = []
    for s in j["sites"]:
        src = datetime.fromisoformat(s["replayed_from"].replace("Z", "+00:00"))
        rows = load_intensity(cfg.sites[s["site"]].grid, src, src + timedelta(hours=s["starts"] + 5),
                              now=datetime(2023, 1, 1, tzinfo=UTC)).rows
        g = [r.grams_per_kwh for r in sorted(rows, key=lambda r: r.hour_utc)]
        for k in range(s["starts"]):
            expected.append((1200 * s["pue"] * sum(g[k:k + 6]) / 6 / 1000, first + timedelta(hours=k), s["site"]))
    kg, start, site = min(expected)
    assert (j["best"]["site"], j["best"]["start"]) == (site, start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert j["best"]["kg_co2e"] == pytest.approx(kg, abs=1e-3)
    # /metrics is still served next to it
    code, _, metrics = get(srv, "/metrics")
    assert code == 200 and catalog.SITE_PUE.series.encode() in metrics


@pytest.mark.parametrize("query, status, message", [
    ({k: v for k, v in QUERY.items() if k != "energy"}, 400, "missing query parameter 'energy'"),
    ({**QUERY, "sites": "sfo,nowhere"}, 400, "unknown site 'nowhere'"),
    ({**QUERY, "duration": "soon"}, 400, "--duration"),
    ({**QUERY, "top": "0"}, 400, "top: must be >= 1"),
    ({**QUERY, "top": "many"}, 400, "top: not a whole number"),
    ({**QUERY, "cost": "sfo:cheap"}, 400, "price >= 0"),
    ({**QUERY, "cost": "sfo:-1"}, 400, "price >= 0"),
    ({**QUERY, "colour": "green"}, 400, "unknown query parameter"),
    ({**QUERY, "mode": "psychic"}, 400, "--mode"),
    ({**QUERY, "by": "2026-11-23", "after": "2026-11-23T20:00:00Z"}, 400, "cannot finish"),
])
def test_plan_endpoint_errors_are_400_with_a_message(server, query, status, message):
    srv, _ = server
    code, ctype, body = get(srv, "/api/plan?" + urlencode(query))
    assert (code, ctype) == (status, "application/json")
    assert message in json.loads(body)["error"]


def test_grid_source_failure_is_502(server):
    _, cfg = server
    from wattfleet.aggregator.grid.errors import GridDataError

    def broken(spec, start, end):
        raise GridDataError("grid spec", None, "path", "cannot read")
    code, body = plan_http(cfg, urlencode({**QUERY, "mode": "forecast"}), loader=broken)
    assert code == 502 and "grid intensity" in body["error"]


def test_unknown_paths_still_404(server):
    srv, _ = server
    assert get(srv, "/api/planx")[0] == 404


def test_served_budget_burn_is_budget_burn_py(tmp_path):
    """serve publishes exactly what budget_burn computes, for every owner kind, in catalog grams."""
    (tmp_path / "facility.yaml").write_text(FACILITY)
    cfg, con = build(str(tmp_path / "fleet.duckdb"), tmp_path / "facility.yaml")
    try:
        cfg.budgets.append(Budget("team", "ml", date(2026, 11, 1), 5.0))  # a month with nothing yet
        body = render(con, cfg, now=datetime(2026, 10, 20, tzinfo=UTC))
        burns = budget_burn_for(con, cfg.budgets)
    finally:
        con.close()
    got: dict[tuple[str, str, str], float] = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            if s.name in (catalog.CARBON_BUDGET.series, catalog.CARBON_BUDGET_USED.series):
                got[(s.name, s.labels["scope_owner"], s.labels["period"])] = s.value
    assert len(got) == 2 * len(burns) == 10
    for b in burns:
        assert got[(catalog.CARBON_BUDGET.series, b.scope_owner, b.period)] == pytest.approx(b.budget_kg * 1000)
        assert got[(catalog.CARBON_BUDGET_USED.series, b.scope_owner, b.period)] == pytest.approx(b.used_kg * 1000)
    by = {(b.scope_owner, b.period): b for b in burns}
    assert by[("team:ml", "2026-10")].used_kg == pytest.approx(1.692 + 8 * 164 / 35040, rel=1e-6)
    assert by[("model:llama-3-70b", "2026-10")].used_kg == pytest.approx(0.0264)
    # site b: 4 h x 0.4 kWh x PUE 1.1 x 20 g = 35.2 g, plus 4 GPU-hours x 164 kg / 35,040 h of embodied carbon
    assert by[("site:b", "2026-10")].used_kg == pytest.approx(0.0352 + 4 * 164 / 35040, rel=1e-6)
    assert by[("team:ml", "2026-11")].used_kg == 0 and by[("team:ml", "2026-11")].rollup_rows == 0


# ---------------------------------------------------------------- bounded cost under hostile input


def test_repeated_sites_are_planned_once_and_answer_like_one_site(server):
    """400 copies of one site (22 s before de-duplication) answer fast, byte for byte as one site."""
    srv, _ = server
    one = {**QUERY, "sites": "sfo"}
    code, _, expected = get(srv, "/api/plan?" + urlencode(one))
    assert code in (200, 400, 502)  # 200 with the shared data; whatever it is, the repeats must match it
    started = time.monotonic()
    code_many, _, body = get(srv, "/api/plan?" + urlencode({**one, "sites": ",".join(["sfo"] * 400)}))
    assert time.monotonic() - started < 5
    assert (code_many, body) == (code, expected)
    code, _, body = get(srv, "/api/plan?" + urlencode({**QUERY, "sites": "chi,sfo,chi,sfo,chi"}))
    if code == 200:
        assert [s["site"] for s in json.loads(body)["sites"]] == ["chi", "sfo"]  # first occurrence order


@pytest.mark.parametrize("query, message", [
    ({**QUERY, "energy": "1e400"}, "energy"),
    ({**QUERY, "energy": "1e400kWh"}, "not a finite energy"),
    ({**QUERY, "energy": "nan"}, "--energy"),
    ({**QUERY, "energy": "inf"}, "--energy"),
    ({**QUERY, "duration": "9" * 60}, "duration"),
    ({**QUERY, "cost": "sfo:inf"}, "price >= 0"),
    ({**QUERY, "cost": "sfo:nan"}, "price >= 0"),
    ({**QUERY, "cost": "sfo:1e400"}, "price >= 0"),
])
def test_non_finite_inputs_are_400_naming_the_parameter(server, query, message):
    srv, _ = server
    code, ctype, body = get(srv, "/api/plan?" + urlencode(query))
    assert (code, ctype) == (400, "application/json")
    assert message in json.loads(body)["error"]  # strict JSON with the reason


LONG_WINDOW = {"after": "2026-11-01T00:00:00Z", "by": "2027-01-15"}


@pytest.mark.parametrize("query, message", [
    ({**QUERY, "duration": "32d"}, "duration: at most 744 h"),
    ({**QUERY, "energy": "200GWh"}, "energy: at most"),
    ({**QUERY, "top": "1001"}, "top: at most 1000"),
    ({**QUERY, "cost": "sfo:20000"}, "cost sfo: at most"),
    ({**QUERY, **LONG_WINDOW}, "hourly starts between after and by, at most 744"),
    ({**QUERY, "sites": ",".join(f"s{i}" for i in range(33))}, "33 distinct sites, at most 32"),
    ({**QUERY, "sites": "x" * 129}, "sites: a name longer than 128"),
    ({**QUERY, "sites": "sfo," * 1100}, "sites: more than 1024 names"),
    ({**QUERY, "duration": "6" + " " * 70 + "h"}, "duration: longer than 64"),
    ({**QUERY, "mode": "a" * 65}, "mode: longer than 64"),
    ({**QUERY, "by": "9999-12-31"}, "--by: out of range"),
    ({**QUERY, "after": "0001-01-01T00:00:00+01:00"}, "--after: out of range"),
    ({**QUERY, "sites": "sfo," * 4200}, "query string:"),
])
def test_over_limit_parameters_are_400_before_any_work(query, message, tmp_path):
    cfg = load_facility_text(tmp_path, two_site_yaml())
    loader = SlowLoader(0.0)
    endpoint = plan_route(cfg, loader=loader)
    with http_server(endpoint) as srv:
        code, ctype, body = get(srv, "/api/plan?" + urlencode(query))
    assert (code, ctype) == (400, "application/json")
    assert message in json.loads(body)["error"]
    assert loader.calls == 0 and endpoint.stats["rejected"] == 1


# A facility of many sites and a loader that takes a while per site: the unit of work the
# endpoint checks between (client still there? deadline?).
MANY = 10
SLOW_QUERY = {"duration": "2h", "energy": "10kWh", "sites": ",".join(f"s{i}" for i in range(MANY)),
              "by": "2026-11-24", "after": "2026-11-23T00:00:00Z", "mode": "forecast"}


def many_site_yaml(n: int = MANY) -> str:
    return "version: 1\nsites:\n" + "".join(
        f"  - {{name: s{i}, zone: FR, pue: 1.1, wue_liters_per_kwh: 1.0, grid: {{source: static}}}}\n"
        for i in range(n))


def load_facility_text(directory: Path, text: str) -> FacilityConfig:
    (directory / "facility.yaml").write_text(text)
    return load_facility(directory / "facility.yaml")


class SlowLoader:
    """Flat intensity for any window, after ``seconds``; counts calls, can be held at a gate."""

    def __init__(self, seconds: float, grams: float = 100.0, gate: threading.Event | None = None) -> None:
        self.seconds, self.grams, self.gate = seconds, grams, gate
        self.calls = 0
        self.entered = threading.Event()

    def __call__(self, spec, start, end):
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.seconds)
        hours = int((end - start) / timedelta(hours=1))
        return intensity_rows(spec["zone"], start, [self.grams] * hours, "average")


class http_server:
    """The real HTTP server with the plan route mounted as `wattfleet serve` mounts it."""

    def __init__(self, endpoint) -> None:
        self.http = HttpServer("127.0.0.1:0", Routes(exact={PLAN_PATH: endpoint}))

    @property
    def port(self) -> int:
        return self.http.port

    def __enter__(self) -> http_server:
        self.http.start()
        return self

    def __exit__(self, *exc) -> None:
        self.http.stop()


def test_a_plan_over_many_sites_completes_with_its_own_loader(tmp_path):
    loader = SlowLoader(0.0)
    endpoint = plan_route(load_facility_text(tmp_path, many_site_yaml()), loader=loader)
    with http_server(endpoint) as srv:
        code, _, body = get(srv, "/api/plan?" + urlencode(SLOW_QUERY))
    assert code == 200 and len(json.loads(body)["sites"]) == MANY
    assert loader.calls == MANY and endpoint.stats["ok"] == 1


def test_a_client_that_leaves_stops_the_work(tmp_path):
    loader = SlowLoader(0.3)
    endpoint = plan_route(load_facility_text(tmp_path, many_site_yaml()), loader=loader)
    with http_server(endpoint) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            sock.sendall(f"GET /api/plan?{urlencode(SLOW_QUERY)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert loader.entered.wait(5)
            time.sleep(0.35)
        # gone after about 2 of 10 sites; the worker stops at its next site
        deadline = time.monotonic() + 5
        while endpoint.stats["abandoned"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert endpoint.stats["abandoned"] == 1
        stopped_at = loader.calls
        time.sleep(MANY * 0.3)  # as long as the whole plan would have taken
        assert loader.calls == stopped_at <= 5  # of 10, with room for a busy machine
        assert endpoint.stats["ok"] == 0
        # the slot is free again: a next plan runs
        loader.seconds = 0.0
        assert get(srv, "/api/plan?" + urlencode(SLOW_QUERY))[0] == 200


def test_a_plan_past_its_deadline_is_503_and_stops(tmp_path):
    loader = SlowLoader(0.2)
    endpoint = plan_route(load_facility_text(tmp_path, many_site_yaml()), loader=loader,
                          limits=PlanLimits(deadline_seconds=0.5))
    with http_server(endpoint) as srv:
        started = time.monotonic()
        code, ctype, body = get(srv, "/api/plan?" + urlencode(SLOW_QUERY))
        assert time.monotonic() - started < 2
    assert (code, ctype) == (503, "application/json")
    assert "did not finish within 0.5 s" in json.loads(body)["error"]
    time.sleep(0.5)
    assert loader.calls <= 5 and endpoint.stats["timed_out"] == 1  # of 10


def test_concurrent_plans_are_bounded_with_429(tmp_path):
    gate = threading.Event()
    loader = SlowLoader(0.0, gate=gate)
    endpoint = plan_route(load_facility_text(tmp_path, many_site_yaml(2)), loader=loader,
                          limits=PlanLimits(max_concurrent=1))
    query = "/api/plan?" + urlencode({**SLOW_QUERY, "sites": "s0,s1"})
    with http_server(endpoint) as srv:
        first: list = []
        t = threading.Thread(target=lambda: first.append(get(srv, query)))
        t.start()
        try:
            assert loader.entered.wait(5)
            with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}{query}", timeout=5) as r:
                pytest.fail(f"expected 429, got {r.status}")
        except urllib.error.HTTPError as exc:
            assert (exc.code, exc.headers["Content-Type"], exc.headers["Retry-After"]) == (429, "application/json",
                                                                                        "1")
            assert "plans are being computed" in json.loads(exc.read())["error"]
        finally:
            gate.set()
            t.join(10)
        assert first[0][0] == 200
        assert get(srv, query)[0] == 200  # the slot came back
    assert endpoint.stats == {"ok": 2, "rejected": 0, "busy": 1, "timed_out": 0, "abandoned": 0, "failed": 0}


def test_non_finite_results_are_an_error_never_invalid_json(tmp_path):
    """A source with absurd values cannot make the endpoint emit Infinity."""
    endpoint = plan_route(load_facility_text(tmp_path, many_site_yaml(1)), loader=SlowLoader(0.0, grams=1e308))
    with http_server(endpoint) as srv:
        code, ctype, body = get(srv, "/api/plan?" + urlencode({**SLOW_QUERY, "sites": "s0"}))
    assert (code, ctype) == (500, "application/json")
    assert b"Infinity" not in body and "non-finite" in json.loads(body)["error"]
