"""Structure of the generated dashboards: ids, positions, units, datasource, catalog names, round trip."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from wattfleet.core import catalog
from wattfleet.dashboards import rules as r
from wattfleet.dashboards.build import dashboards
from wattfleet.dashboards.promql import metric_names
from wattfleet.dashboards.validate import check_dashboard, dashboard_exprs, iter_panels, rule_exprs, unknown_metrics

DASHBOARDS = dashboards()


@pytest.fixture(params=sorted(DASHBOARDS))
def dash(request: pytest.FixtureRequest) -> dict[str, Any]:
    return copy.deepcopy(DASHBOARDS[request.param])


def test_generated_dashboards_pass_every_structural_check(dash: dict[str, Any]) -> None:
    assert check_dashboard(dash) == []


def test_every_name_in_every_query_is_published(dash: dict[str, Any]) -> None:
    assert unknown_metrics(dashboard_exprs(dash), r.recording_rule_names()) == {}


def test_every_name_in_every_rule_is_published() -> None:
    groups = r.recording_rules() + r.alerting_rules()
    assert unknown_metrics(rule_exprs(groups), r.recording_rule_names()) == {}


def test_every_recording_rule_used_by_a_dashboard_exists() -> None:
    recorded = set(r.recording_rule_names())
    used = {n for d in DASHBOARDS.values() for e in dashboard_exprs(d) for n in metric_names(e) if ":" in n}
    assert used and used <= recorded


def test_uids_and_titles_are_unique() -> None:
    assert len({d["uid"] for d in DASHBOARDS.values()}) == len(DASHBOARDS)
    assert len({d["title"] for d in DASHBOARDS.values()}) == len(DASHBOARDS)


# --- the checker catches what it claims to catch ---------------------------------
def _first_data_panel(d: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in d["panels"] if p["type"] != "row")


def test_checker_reports_duplicate_ids(dash: dict[str, Any]) -> None:
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    panels[1]["id"] = panels[0]["id"]
    assert any("id missing or duplicated" in p for p in check_dashboard(dash))


def test_checker_reports_overlap(dash: dict[str, Any]) -> None:
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    panels[1]["gridPos"] = dict(panels[0]["gridPos"], x=panels[0]["gridPos"]["x"] + 1)
    assert any("overlaps" in p for p in check_dashboard(dash))


def test_checker_reports_a_panel_wider_than_the_grid(dash: dict[str, Any]) -> None:
    _first_data_panel(dash)["gridPos"]["x"] = 23
    assert any("outside the 24-column grid" in p for p in check_dashboard(dash))


def test_checker_reports_missing_unit(dash: dict[str, Any]) -> None:
    del _first_data_panel(dash)["fieldConfig"]["defaults"]["unit"]
    assert any("no unit" in p for p in check_dashboard(dash))


def test_checker_reports_a_pinned_datasource(dash: dict[str, Any]) -> None:
    panel = _first_data_panel(dash)
    panel["datasource"] = {"type": "prometheus", "uid": "abc123"}
    panel["targets"][0]["datasource"] = "Prometheus"
    problems = check_dashboard(dash)
    assert any("datasource is not the $datasource variable" in p for p in problems)
    assert any("target A does not use the $datasource variable" in p for p in problems)


@pytest.mark.parametrize("var", ["datasource", "cluster", "site", "node", "gpu"])
def test_checker_reports_a_missing_variable(var: str) -> None:
    dash = copy.deepcopy(DASHBOARDS["wattfleet-fleet"])
    dash["templating"]["list"] = [v for v in dash["templating"]["list"] if v["name"] != var]
    assert f"template variable ${var} missing" in "\n".join(check_dashboard(dash))


def test_checker_reports_keys_grafana_does_not_know(dash: dict[str, Any]) -> None:
    dash["pannels"] = []
    assert any("pannels" in p for p in check_dashboard(dash))


def test_scan_catches_an_unpublished_name() -> None:
    bad = unknown_metrics([f"{catalog.GPU_POWER.series} / wattfleet_gpu_power_wats",
                           "site:wattfleet_unknown:sum", catalog.GPU_ENERGY.name],
                          r.recording_rule_names())
    assert set().union(*bad.values()) == {"wattfleet_gpu_power_wats", "site:wattfleet_unknown:sum",
                                          catalog.GPU_ENERGY.name}  # counters need their _total


def test_metric_name_extraction_ignores_labels_functions_and_variables() -> None:
    expr = ('sum by (site, node) (rate(wattfleet_gpu_energy_joules_total{node=~"$node",gpu="a:b"}[$__rate_interval]))'
            ' * on(site) group_left(zone) max by (site, zone) (wattfleet_site_pue_ratio) / 3.6e+06'
            ' or label_replace(vector(0), "reason", "none", "", "") and node:x:sum offset 5m')
    assert metric_names(expr) == {"wattfleet_gpu_energy_joules_total", "wattfleet_site_pue_ratio", "node:x:sum"}


# --- JSON round trip through grafanalib's model ----------------------------------
def _targets(p: dict[str, Any]) -> list[g.Target]:
    return [g.Target(expr=t["expr"], legendFormat=t["legendFormat"], refId=t["refId"], instant=t["instant"],
                     format=t["format"], datasource=t["datasource"]) for t in p["targets"]]


def _common(p: dict[str, Any]) -> dict[str, Any]:
    return {"title": p["title"], "id": p["id"], "gridPos": g.GridPos(**p["gridPos"]),
            "description": p["description"], "dataSource": p["datasource"], "timeFrom": p["timeFrom"],
            "transformations": p["transformations"]}


def panel_from_json(p: dict[str, Any]) -> g.Panel:
    """Rebuild the grafanalib object from Grafana JSON (the kinds of panel we generate)."""
    d = p["fieldConfig"]["defaults"]
    if p["type"] == "row":
        return g.RowPanel(title=p["title"], id=p["id"], gridPos=g.GridPos(**p["gridPos"]))
    if p["type"] == "stat":
        return g.Stat(targets=_targets(p), format=d["unit"], decimals=d["decimals"],
                      reduceCalc=p["options"]["reduceOptions"]["calcs"][0], graphMode=p["options"]["graphMode"],
                      thresholds=d["thresholds"]["steps"], **_common(p))
    if p["type"] == "timeseries":
        legend, custom = p["options"]["legend"], d["custom"]
        return g.TimeSeries(targets=_targets(p), unit=d["unit"], legendDisplayMode=legend["displayMode"],
                            legendPlacement=legend["placement"], legendCalcs=legend["calcs"],
                            stacking=custom["stacking"], fillOpacity=custom["fillOpacity"],
                            overrides=p["fieldConfig"]["overrides"], **_common(p))
    if p["type"] == "table":
        return g.Table(targets=_targets(p), unit=d["unit"],
                       sortBy=[g.TableSortByField(**s) for s in p["options"]["sortBy"]], **_common(p))
    raise AssertionError(f"unexpected panel type {p['type']}")


def template_from_json(v: dict[str, Any]) -> g.Template:
    t = g.Template(name=v["name"], query=v["query"], dataSource=v["datasource"], label=v["label"],
                   includeAll=v["includeAll"], multi=v["multi"], allValue=v["allValue"], refresh=v["refresh"],
                   sort=v["sort"], type=v["type"], default=v["current"]["value"])
    t._current = v["current"]
    return t


def dashboard_from_json(d: dict[str, Any]) -> g.Dashboard:
    return g.Dashboard(
        title=d["title"], uid=d["uid"], description=d["description"], tags=d["tags"],
        panels=[panel_from_json(p) for p in d["panels"]],
        templating=g.Templating(list=[template_from_json(v) for v in d["templating"]["list"]]),
        time=g.Time(d["time"]["from"], d["time"]["to"]), refresh=d["refresh"], timezone=d["timezone"],
        graphTooltip=d["graphTooltip"], editable=d["editable"], schemaVersion=d["schemaVersion"],
        links=[g.DashboardLink(title=lk["title"], type=lk["type"], tags=lk["tags"], asDropdown=lk["asDropdown"],
                               includeVars=lk["includeVars"], keepTime=lk["keepTime"]) for lk in d["links"]])


def test_json_round_trips_through_grafanalib_without_loss(dash: dict[str, Any]) -> None:
    text = json.dumps(dash, sort_keys=True)
    loaded = json.loads(text)
    assert loaded == dash
    rebuilt = json.loads(json.dumps(dashboard_from_json(loaded).to_json_data(), cls=DashboardEncoder))
    assert rebuilt == dash


def test_every_panel_sets_title_and_type(dash: dict[str, Any]) -> None:
    for p in iter_panels(dash):
        assert p["title"] and p["type"] in {"row", "stat", "timeseries", "table"}
