"""Workloads: the nodes' energy by namespace, pod and workload, with idle, system and unallocated explicit."""

from __future__ import annotations

from grafanalib import core as g

from wattfleet.core import catalog
from wattfleet.dashboards import promql as q
from wattfleet.dashboards import rules as r
from wattfleet.dashboards.base import dashboard
from wattfleet.dashboards.panels import GRAMS, GRAMS_PER_HOUR, KWH, PERCENT_UNIT, SECONDS, WATT, Layout, Query

UID = "wattfleet-workloads"


def _power(share: str | None = None, labels: tuple[str, ...] = (), ne: bool = False) -> str:
    """Watts from the recorded per-workload power, optionally one share (or every share but it)."""
    shares = {"share": share} if share and not ne else None
    sel = q.selector(r.NODE_WORKLOAD_POWER, eq=shares, ne={"share": share} if share and ne else None,
                     regex=q.node_filters())
    return q.agg("sum", sel, labels)


def _energy_kwh(labels: tuple[str, ...], share: str = catalog.SHARE_WORKLOAD) -> str:
    sel = q.selector(catalog.WORKLOAD_ENERGY, eq={"share": share}, regex=q.node_filters())
    return f"{q.agg('sum', q.increase(sel), labels)} / {q.JOULES_PER_KWH:g}"


def _carbon_rate(labels: tuple[str, ...]) -> str:
    return q.agg("sum", q.selector(r.NAMESPACE_CARBON_RATE, regex={"cluster": q.VAR_CLUSTER, "site": q.VAR_SITE}),
                 labels) + " * 3600"


def build() -> g.Dashboard:
    lay = Layout()
    lay.row("Now")
    lay.stat("Power used by workloads", WATT, [Query(_power(catalog.SHARE_WORKLOAD))], w=6,
             description="GPU, CPU and DRAM power of the selected nodes attributed to pods and batch jobs "
                         "(share=\"workload\").")
    lay.stat("Idle, system and unallocated power", WATT, [Query(_power(catalog.SHARE_WORKLOAD, ne=True))], w=6,
             description="The rest of the nodes' measured power: CPUs idle, busy outside pods (kernel, daemons, "
                         "kubelet), GPUs no pod holds.")
    lay.stat("Workload share of node power", PERCENT_UNIT, [Query(
        f"{_power(catalog.SHARE_WORKLOAD)} / {_power()}")], w=6, decimals=1)
    lay.stat("Oldest GPU-to-pod mapping", SECONDS, [Query(q.agg("max", q.selector(
        catalog.WORKLOAD_MAPPING_AGE, regex=q.node_filters())))], w=6,
             description="Time since the kubelet's pod-resources API last answered on the worst node; the "
                         "last mapping is kept while it does not.")

    lay.row("By namespace")
    lay.timeseries("Power by namespace", WATT, [
        Query(_power(catalog.SHARE_WORKLOAD, ("namespace",)), "{{namespace}}")], stacked=True,
        description="Workload power only; batch jobs outside Kubernetes have an empty namespace.")
    lay.timeseries("Where the nodes' power goes", WATT, [
        Query(_power(labels=("component", "share")), "{{component}} {{share}}")], stacked=True,
        description="Every share of every component: the stack is the nodes' measured GPU + CPU + DRAM power.")
    lay.timeseries("Carbon rate by namespace (location-based)", GRAMS_PER_HOUR, [
        Query(_carbon_rate(("namespace",)), "{{namespace}}")], stacked=True,
        description="Workload power x site PUE x the zone's hourly average grid intensity.")
    lay.timeseries("Power by workload", WATT, [
        Query(f"topk(15, {_power(catalog.SHARE_WORKLOAD, ('namespace', 'pod', 'workload'))})",
              "{{namespace}}/{{pod}}")],
        description="The 15 largest pods and batch jobs (workload names the owner where known, slurm/<id> for "
                    "Slurm jobs).")

    lay.row("Over the selected range")
    lay.table("Energy by namespace", KWH, [Query(_energy_kwh(("namespace",)))])
    lay.table("Energy by pod and workload", KWH, [Query(
        f"topk(20, {_energy_kwh(('namespace', 'pod', 'workload'))})")])
    lay.table("Carbon by namespace (location-based)", GRAMS, [Query(q.agg("sum", q.integrate(q.selector(
        r.NAMESPACE_CARBON_RATE, regex={"cluster": q.VAR_CLUSTER, "site": q.VAR_SITE})), ("namespace",)))])
    every_share = q.increase(q.selector(catalog.WORKLOAD_ENERGY, regex=q.node_filters()))
    lay.table("Energy by share and component", KWH, [Query(
        f"{q.agg('sum', every_share, ('component', 'share'))} / {q.JOULES_PER_KWH:g}")])
    return dashboard("wattfleet / Workloads", UID, lay,
                     "The nodes' measured energy by namespace, pod and workload (Kubernetes pods, Slurm jobs), "
                     "with idle, system and unallocated energy explicit.")
