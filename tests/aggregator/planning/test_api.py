"""`wattfleet serve`: the planner over HTTP (GET /api/plan) and the carbon budget burn it publishes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import date, datetime, timezone
from urllib.parse import urlencode

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fixtures.agg.disclosure_fleet import FACILITY, build
from fixtures.agg.planning_inputs import two_site_yaml
from promserver import free_port
from shared_data import EIA_DIR as DATA
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.config.model import Budget
from wattfleet.aggregator.outputs.serve import AggregatorServer, render
from wattfleet.aggregator.planning.api import plan_http
from wattfleet.aggregator.planning.budgets import budget_burn_for
from wattfleet.aggregator.planning.plan import plan_json
from wattfleet.core import catalog

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
