"""What every wattfleet dashboard shares: variables, tags, links, time settings."""

from __future__ import annotations

from grafanalib import core as g

from wattfleet.dashboards.panels import Layout
from wattfleet.dashboards.variables import templating

TAG = "wattfleet"
# Grafana 9+ JSON model; our panels already use its fieldConfig layout, so no migration is needed.
SCHEMA_VERSION = 37


def dashboard(title: str, uid: str, layout: Layout, description: str, time_from: str = "now-6h",
              refresh: str = "30s") -> g.Dashboard:
    """A dashboard holding ``layout``'s panels; ``uid`` is stable so links and provisioning survive rebuilds."""
    return g.Dashboard(
        title=title, uid=uid, description=description, tags=[TAG], panels=layout.panels,
        templating=templating(), time=g.Time(time_from, "now"), refresh=refresh, timezone="utc",
        graphTooltip=1, editable=False, schemaVersion=SCHEMA_VERSION,
        links=[g.DashboardLink(title="wattfleet", type="dashboards", tags=[TAG], asDropdown=True,
                               includeVars=True, keepTime=True)])
