"""Node detail: every GPU and CPU domain of the selected nodes, and whether the collectors work."""

from __future__ import annotations

from grafanalib import core as g

from wattfleet.core import catalog
from wattfleet.dashboards import promql as q
from wattfleet.dashboards.base import dashboard
from wattfleet.dashboards.panels import BYTES, CELSIUS, HERTZ, KWH, PERCENT_UNIT, SECONDS, SHORT, WATT, Layout, Query

UID = "wattfleet-node"
GPU_LEGEND = "{{node}} GPU {{gpu}}"


def _gpu(metric: catalog.Metric) -> str:
    return q.selector(metric, regex=q.node_filters(gpu=True))


def _node(metric: catalog.Metric, **extra: str) -> str:
    return q.selector(metric, regex={**q.node_filters(), **extra})


def _method_share() -> str:
    """Share of IT power by method (measured vs estimated)."""
    it = q.it_energy("rate", q.RATE_INTERVAL, q.node_filters())
    return f"{q.agg('sum', it, ('method',))} / ignoring(method) group_left() {q.agg('sum', it)}"


def build() -> g.Dashboard:
    lay = Layout()
    lay.row("GPUs")
    lay.timeseries("GPU power", WATT, [
        Query(_gpu(catalog.GPU_POWER), GPU_LEGEND),
        Query(_gpu(catalog.GPU_POWER_LIMIT), GPU_LEGEND + " limit")])
    lay.timeseries("GPU power from energy counter", WATT, [
        Query(q.agg("sum", q.rate(_gpu(catalog.GPU_ENERGY)), ("node", "gpu", "source")),
              GPU_LEGEND + " ({{source}})")],
        description="Rate of the corrected energy counter: the accurate figure, unlike sampled power.")
    lay.table("GPU energy over the range", KWH, [Query(
        q.agg("sum", q.increase(_gpu(catalog.GPU_ENERGY)), ("node", "gpu", "gpu_model", "method"))
        + f" / {q.JOULES_PER_KWH:g}")], w=8)
    lay.timeseries("GPU utilization", PERCENT_UNIT, [
        Query(_gpu(catalog.GPU_UTILIZATION), GPU_LEGEND + " SM"),
        Query(_gpu(catalog.GPU_MEMORY_UTILIZATION), GPU_LEGEND + " memory")], w=8)
    lay.timeseries("GPU temperature", CELSIUS, [Query(_gpu(catalog.GPU_TEMPERATURE), GPU_LEGEND)], w=8)
    lay.timeseries("GPU clocks", HERTZ, [
        Query(_gpu(catalog.GPU_SM_CLOCK), GPU_LEGEND + " SM"),
        Query(_gpu(catalog.GPU_MEMORY_CLOCK), GPU_LEGEND + " memory")], w=12)
    lay.timeseries("GPU memory used", BYTES, [Query(_gpu(catalog.GPU_MEMORY_USED), GPU_LEGEND)], w=12)

    lay.row("CPU and memory")
    lay.timeseries("CPU power by RAPL domain", WATT, [Query(
        q.agg("sum", q.rate(_node(catalog.CPU_ENERGY)), ("node", "socket", "domain", "method")),
        "{{node}} socket {{socket}} {{domain}} ({{method}})")],
        description="package, core, uncore, dram and psys as the hardware reports them. They overlap "
                    "(core and uncore are inside package, psys covers everything): IT power adds package "
                    "and dram only.")
    lay.timeseries("Measured vs estimated share of IT power", PERCENT_UNIT, [Query(_method_share(), "{{method}}")],
                   stacked=True)
    lay.timeseries("CPU utilization", PERCENT_UNIT, [Query(_node(catalog.CPU_UTILIZATION), "{{node}}")], w=8)
    lay.timeseries("Memory used", BYTES, [Query(_node(catalog.MEMORY_USED), "{{node}}")], w=8)

    lay.row("Collector health")
    lay.timeseries("Collectors up", SHORT, [
        Query(_node(catalog.COLLECTOR_UP), "{{node}} {{collector}} up"),
        Query(_node(catalog.COLLECTOR_ENABLED), "{{node}} {{collector}} enabled")], w=8)
    errors = q.agg("sum", q.rate(_node(catalog.COLLECTOR_ERRORS)), ("node", "collector", "reason"))
    zero = q.agg("sum", _node(catalog.COLLECTOR_UP), ("node", "collector")) + " * 0"
    zero = f'label_replace({zero}, "reason", "none", "", "")'
    lay.timeseries("Collector errors", SHORT, [Query(f"{errors} or on(node, collector) {zero}",
                                                     "{{node}} {{collector}} {{reason}}")],
                   w=8, description="Errors per second by reason; zero lines mean the collector has had none.")
    lay.timeseries("Sample duration", SECONDS, [Query(_node(catalog.SAMPLE_DURATION), "{{node}} {{collector}}")],
                   w=8)
    lay.table("Energy counter corrections over the range", SHORT, [
        Query(q.agg("sum", q.increase(_node(catalog.COUNTER_WRAPS)), ("node", "sensor", "device")), "wraps"),
        Query(q.agg("sum", q.increase(_node(catalog.COUNTER_RESETS)), ("node", "sensor", "device")), "resets")],
        w=24, h=6)
    return dashboard("wattfleet / Node detail", UID, lay,
                     "Per-GPU and per-RAPL-domain power, energy, utilization, temperature, clocks and collector "
                     "health of the selected nodes.", time_from="now-1h")
