"""Panel constructors that always set a unit and the datasource variable.

Grafana draws an unlabelled number when a panel has no unit, and a panel
pinned to one datasource breaks on every other Grafana; routing every panel
through these helpers makes both mistakes impossible. Positions come from
:class:`Layout`, which packs panels left to right in 24-column rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grafanalib import core as g

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24

# Grafana unit ids (https://grafana.com/docs/grafana/latest/panels-visualizations/configure-standard-options/).
WATT, KWH, JOULE = "watt", "kwatth", "joule"
GRAMS, KILOGRAMS = "massg", "masskg"
GRAMS_PER_HOUR = "suffix:gCO2e/h"
GRAMS_PER_KWH = "suffix:gCO2e/kWh"
LITRES, LITRES_PER_HOUR = "litre", "suffix:L/h"
RATIO, PERCENT_UNIT, NONE = "none", "percentunit", "none"
CELSIUS, HERTZ, SECONDS, BYTES, SHORT = "celsius", "hertz", "s", "bytes", "short"
TOKENS_PER_SECOND, REQUESTS_PER_SECOND = "suffix:tok/s", "reqps"


@dataclass
class Query:
    """One PromQL target: ``legend`` uses Grafana's ``{{label}}`` syntax."""

    expr: str
    legend: str = ""
    instant: bool = False


def _targets(queries: list[Query], instant: bool = False) -> list[g.Target]:
    refs = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [g.Target(expr=qy.expr, legendFormat=qy.legend, refId=refs[i], instant=qy.instant or instant,
                     datasource=DATASOURCE)
            for i, qy in enumerate(queries)]


@dataclass
class Layout:
    """Places panels in reading order; a panel wider than what is left starts a new row."""

    x: int = 0
    y: int = 0
    row_height: int = 0
    next_id: int = 1
    panels: list[g.Panel] = field(default_factory=list)

    def _place(self, w: int, h: int) -> g.GridPos:
        if not 0 < w <= GRID_WIDTH:
            raise ValueError(f"panel width {w} outside 1..{GRID_WIDTH}")
        if self.x + w > GRID_WIDTH:
            self.newline()
        pos = g.GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.row_height = max(self.row_height, h)
        return pos

    def newline(self) -> None:
        if self.x:
            self.y += self.row_height
        self.x, self.row_height = 0, 0

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def row(self, title: str) -> None:
        """A collapsible section header spanning the full width."""
        self.newline()
        self.panels.append(g.RowPanel(title=title, id=self._id(),
                                      gridPos=g.GridPos(h=1, w=GRID_WIDTH, x=0, y=self.y)))
        self.y += 1

    def stat(self, title: str, unit: str, queries: list[Query], w: int = 4, h: int = 4,
             description: str = "", time_from: str | None = None, decimals: int | None = None,
             colour: str = "green") -> None:
        """A single figure; ``colour`` is its quantity's (wattfleet.core.palette) where it has one."""
        self.panels.append(g.Stat(
            title=title, description=description, dataSource=DATASOURCE, targets=_targets(queries, True),
            format=unit, reduceCalc="lastNotNull", graphMode="none", decimals=decimals,
            thresholds=[{"color": colour, "value": None}],
            gridPos=self._place(w, h), id=self._id(), timeFrom=time_from))

    def timeseries(self, title: str, unit: str, queries: list[Query], w: int = 12, h: int = 8,
                   description: str = "", stacked: bool = False, colours: dict[str, str] | None = None) -> None:
        """``colours``: series display-name regex -> fixed colour (the palette's, so a scope looks the same
        here as in the report)."""
        self.panels.append(g.TimeSeries(
            overrides=[fixed_colour(pattern, c) for pattern, c in (colours or {}).items()],
            title=title, description=description, dataSource=DATASOURCE, targets=_targets(queries),
            unit=unit, legendDisplayMode="table", legendPlacement="right", legendCalcs=["lastNotNull", "mean"],
            stacking={"mode": "normal", "group": "A"} if stacked else {},
            fillOpacity=20 if stacked else 0, gridPos=self._place(w, h), id=self._id()))

    def table(self, title: str, unit: str, queries: list[Query], w: int = 12, h: int = 8,
              description: str = "", time_from: str | None = None) -> None:
        """Instant queries shown as rows, one per series; the value column takes ``unit``."""
        targets = [g.Target(expr=qy.expr, legendFormat=qy.legend, refId="ABCDEFGH"[i], instant=True,
                            format="table", datasource=DATASOURCE) for i, qy in enumerate(queries)]
        self.panels.append(g.Table(
            title=title, description=description, dataSource=DATASOURCE, targets=targets, unit=unit,
            gridPos=self._place(w, h), id=self._id(), timeFrom=time_from,
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
            sortBy=[g.TableSortByField(displayName="Value", desc=True)]))


def fixed_colour(name_regex: str, colour: str) -> dict[str, Any]:
    """A field override that draws every series whose display name matches ``name_regex`` in ``colour``."""
    return {"matcher": {"id": "byRegexp", "options": name_regex},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": colour}}]}


def queries_of(panel: dict[str, Any]) -> list[str]:
    """The PromQL expressions of a panel's targets (from rendered JSON)."""
    return [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
