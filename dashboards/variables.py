"""Template variables shared by every dashboard: datasource, cluster, site, node, gpu.

Each narrows the next (site values come from the selected clusters, and so
on), and "All" is the regex ``.*`` so that selectors with ``=~`` still match
series whose label is empty.
"""

from __future__ import annotations

from grafanalib import core as g

from wattfleet.core import catalog
from wattfleet.dashboards import promql as q
from wattfleet.dashboards.panels import DATASOURCE
from wattfleet.dashboards.provisioning import DATASOURCE_NAME

ALL = ".*"


def _query_var(name: str, label: str, query: str) -> g.Template:
    var = g.Template(name=name, label=label, query=query, dataSource=DATASOURCE, includeAll=True,
                     multi=True, allValue=ALL, default="$__all", refresh=2, sort=1)
    # Grafana shows "All" for the all-value; grafanalib would show the raw "$__all".
    var._current = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return var


def variable_queries() -> dict[str, str]:
    """``label_values`` queries by variable name (the tests run their selectors)."""
    build = catalog.BUILD_INFO
    return {
        "cluster": f"label_values({q.selector(build)}, cluster)",
        "site": f"label_values({q.selector(build, regex={'cluster': q.VAR_CLUSTER})}, site)",
        "node": f"label_values({q.selector(build, regex={'cluster': q.VAR_CLUSTER, 'site': q.VAR_SITE})}, node)",
        "gpu": f"label_values({q.selector(catalog.GPU_INFO, regex=q.node_filters())}, gpu)",
    }


def templating() -> g.Templating:
    datasource = g.Template(name="datasource", label="Data source", query="prometheus", type="datasource",
                            default=DATASOURCE_NAME)
    labels = {"cluster": "Cluster", "site": "Site", "node": "Node", "gpu": "GPU"}
    return g.Templating(list=[datasource] + [_query_var(name, labels[name], query)
                                             for name, query in variable_queries().items()])
