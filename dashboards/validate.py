"""Structural checks on rendered dashboards and rule files.

Grafana accepts almost any JSON and silently drops what it does not know, so
mistakes show up as empty or overlapping panels in front of users. These
checks run in the tests and in ``dashboards build`` (which refuses to write
a dashboard that fails them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from wattfleet.core import catalog
from wattfleet.dashboards.panels import DATASOURCE, GRID_WIDTH
from wattfleet.dashboards.promql import metric_names

# Top-level keys of Grafana's documented dashboard JSON model
# (https://grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model/),
# plus ``__inputs`` used by exported dashboards.
DASHBOARD_KEYS = {
    "__inputs", "__requires", "annotations", "description", "editable", "fiscalYearStartMonth", "gnetId",
    "graphTooltip", "hideControls", "id", "links", "liveNow", "panels", "refresh", "rows", "schemaVersion",
    "sharedCrosshair", "style", "tags", "templating", "time", "timepicker", "timezone", "title", "uid",
    "version", "weekStart",
}
REQUIRED_VARIABLES = ("datasource", "cluster", "site", "node", "gpu")
# Series Prometheus itself adds to every target; not in our catalog by design.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def _rects_overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def iter_panels(dashboard: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def check_dashboard(d: dict[str, Any]) -> list[str]:
    """Problems in one dashboard's JSON, each naming the panel; empty when fine."""
    problems: list[str] = []
    title = d.get("title", "?")
    unknown = set(d) - DASHBOARD_KEYS
    if unknown:
        problems.append(f"{title}: keys not in Grafana's dashboard model: {sorted(unknown)}")
    if not d.get("uid"):
        problems.append(f"{title}: no uid")
    names = [v.get("name") for v in d.get("templating", {}).get("list", [])]
    for var in REQUIRED_VARIABLES:
        if var not in names:
            problems.append(f"{title}: template variable ${var} missing")
    seen_ids: set[Any] = set()
    placed: list[tuple[str, dict[str, int]]] = []
    for p in iter_panels(d):
        where = f"{title}: panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in seen_ids or p.get("id") is None:
            problems.append(f"{where}: id missing or duplicated")
        seen_ids.add(p.get("id"))
        pos = p.get("gridPos") or {}
        if not all(isinstance(pos.get(k), int) for k in "xywh"):
            problems.append(f"{where}: gridPos incomplete: {pos}")
            continue
        if pos["x"] < 0 or pos["w"] < 1 or pos["x"] + pos["w"] > GRID_WIDTH or pos["h"] < 1:
            problems.append(f"{where}: gridPos outside the 24-column grid: {pos}")
        for other, opos in placed:
            if _rects_overlap(pos, opos):
                problems.append(f"{where}: overlaps {other}")
        placed.append((where, pos))
        if p.get("type") == "row":
            continue  # a section header: no data, no unit
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if not unit:
            problems.append(f"{where}: no unit")
        if p.get("datasource") != DATASOURCE:
            problems.append(f"{where}: datasource is not the $datasource variable")
        targets = p.get("targets") or []
        if not targets:
            problems.append(f"{where}: no queries")
        for t in targets:
            if t.get("datasource") != DATASOURCE:
                problems.append(f"{where}: target {t.get('refId')} does not use the $datasource variable")
            if not t.get("expr"):
                problems.append(f"{where}: target {t.get('refId')} has no expression")
    return problems


def unknown_metrics(exprs: Iterable[str], recorded: Iterable[str]) -> dict[str, set[str]]:
    """Expression -> names in it that are neither catalog series nor our recording rules."""
    known = {m.series for m in catalog.all_metrics()} | set(recorded) | PROMETHEUS_SERIES
    out = {}
    for expr in exprs:
        bad = metric_names(expr) - known
        if bad:
            out[expr] = bad
    return out


def dashboard_exprs(d: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard: panel targets and variable queries."""
    exprs = [t["expr"] for p in iter_panels(d) for t in p.get("targets", []) if t.get("expr")]
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") == "query" and isinstance(v.get("query"), str):
            exprs.append(variable_selector(v["query"]))
    return exprs


def variable_selector(query: str) -> str:
    """``label_values(SELECTOR, label)`` -> SELECTOR (the part that is PromQL)."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*", query, re.S)
    return m.group(1) if m else query


def rule_exprs(groups: list[dict[str, Any]]) -> list[str]:
    return [r["expr"] for g in groups for r in g["rules"]]
