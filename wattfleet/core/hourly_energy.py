"""Hourly energy per device in PromQL: the one definition the aggregator reads and the recording rules record.

``max by (<device labels>) (increase(<counter>[1h]))`` evaluated at a whole
hour's end is the device's energy of that hour; ``max`` so a target scraped
twice (an HA pair) is not counted twice. The aggregator evaluates it itself
(``query_range``, step 1h) or, with pre-aggregation, reads what a recording
rule of the same expression stored (dashboards/rules.py generates the rule
from here), so both paths cannot drift apart.
"""

from __future__ import annotations

from wattfleet.core import catalog

# No ``namespace`` or ``team`` in ``by``: on a device series those are the scrape target's (under the
# Prometheus Operator, the exporter pod's own namespace), not a workload's. Who used the energy comes
# only from the workload series (catalog.WORKLOAD_ENERGY; aggregator/ingest, docs/accounting.md section 20).
# The GPU board's label before it was renamed ``gpu_model`` (it collided with the LLM's ``model`` on
# inference series). Still read on GPU energy so stored history and not-yet-upgraded exporters keep their
# board model; to be dropped once no store holds such series (README, "Upgrading").
LEGACY_GPU_MODEL_LABEL = "model"

# LEGACY_GPU_MODEL_LABEL too: an exporter older than the gpu_model rename labels the board ``model``;
# kept apart in ``by`` so an hour that spans the upgrade adds the old and new series (never max of both).
GPU_LABELS: tuple[str, ...] = catalog.CONST_LABELS + ("gpu", "gpu_model", LEGACY_GPU_MODEL_LABEL, "method")
CPU_LABELS: tuple[str, ...] = catalog.CONST_LABELS + ("socket", "domain", "method")

# Recorded series (Prometheus' level:metric:operations naming): one sample per device and hour.
RECORDED = {
    catalog.GPU_ENERGY.name: "device:wattfleet_gpu_energy_joules:increase1h",
    catalog.CPU_ENERGY.name: "device:wattfleet_cpu_energy_joules:increase1h",
}


def selector(series: str, *matchers: str) -> str:
    """``series{m1, m2}`` (empty matchers left out)."""
    kept = [m for m in matchers if m]
    return f"{series}{{{', '.join(kept)}}}" if kept else series


def energy_expressions(*matchers: str) -> dict[str, str]:
    """Hourly energy per device, per energy metric; ``matchers`` narrow every selector (series shards)."""
    domains = "|".join(catalog.RAPL_IT_DOMAINS)
    gpu = selector(catalog.GPU_ENERGY.series, *matchers)
    cpu = selector(catalog.CPU_ENERGY.series, f'domain=~"{domains}"', *matchers)
    return {
        catalog.GPU_ENERGY.name: f"max by ({', '.join(GPU_LABELS)}) (increase({gpu}[1h]))",
        catalog.CPU_ENERGY.name: f"max by ({', '.join(CPU_LABELS)}) (increase({cpu}[1h]))",
    }


def recorded_expressions(*matchers: str) -> dict[str, str]:
    """Read the recorded hourly energy: evaluated at T + 1 h, it gives the hour ending at T.

    The rule's sample for the hour ending at T lands at T + offset, with
    0 <= offset < 1 h (see :func:`recording_rule_group`). At T + 1 h,
    ``[1h] offset 1ms`` spans [T - 1 ms, T + 1 h - 1 ms]: it holds that
    sample and never the next hour's (at T + 1 h + offset); should it also
    hold the previous hour's, that one is older and ``last_over_time``
    takes the newer. The query runs at whole hours, so stores that align
    query_range to the step (VictoriaMetrics' cache) ask the same.
    """
    return {name: f"last_over_time({selector(rec, *matchers)}[1h] offset 1ms)" for name, rec in RECORDED.items()}


RECORDED_READ_SHIFT_SECONDS = 3600  # recorded_expressions() are evaluated an hour after each hour's end


# Energy by workload per node, component and workload or share (catalog.WORKLOAD_ENERGY). Inside, ``max by``
# every label that tells series apart, so a target scraped twice counts once; outside, ``sum`` over pods and
# containers, which come and go while the workload (the owner) stays. ``exported_*``: where a scrape without
# honor_labels met a target label of the same name, Prometheus keeps the series' own value under that name.
WORKLOAD_SERIES_LABELS: tuple[str, ...] = catalog.CONST_LABELS + (
    "component", "namespace", "exported_namespace", "pod", "exported_pod", "container", "exported_container",
    "workload", "share")
WORKLOAD_LABELS: tuple[str, ...] = catalog.CONST_LABELS + (
    "component", "namespace", "exported_namespace", "workload", "share")
RECORDED_WORKLOAD = "node_workload:wattfleet_workload_energy_joules:increase1h"


def workload_expression(*matchers: str) -> str:
    """Hourly energy by workload (evaluated at a whole hour's end: the hour before it)."""
    sel = selector(catalog.WORKLOAD_ENERGY.series, *matchers)
    return (f"sum by ({', '.join(WORKLOAD_LABELS)}) "
            f"(max by ({', '.join(WORKLOAD_SERIES_LABELS)}) (increase({sel}[1h])))")


def recorded_workload_expression(*matchers: str) -> str:
    """Read the recorded hourly energy by workload, as :func:`recorded_expressions` reads device energy."""
    return f"last_over_time({selector(RECORDED_WORKLOAD, *matchers)}[1h] offset 1ms)"


def recording_rule_group(interval: str = "1h") -> dict[str, object]:
    """The rule group recording :func:`energy_expressions` once an hour (``rules/`` of ``dashboards build``).

    Prometheus evaluates a group at a fixed offset within its interval
    (derived from the group's name and file; ``promtool tsdb
    create-blocks-from rules`` does the same), never at whole hours. The
    subquery ``(...)[1h:1h]`` is evaluated at absolute multiples of its
    step, so whenever the rule runs it computes the expression at the last
    whole hour T: the recorded value is exactly what the raw query gives at
    T, stored with the rule's own timestamp T + offset.
    """
    exprs = energy_expressions()
    rules = [{"record": RECORDED[name], "expr": f"last_over_time(({expr})[1h:1h])"} for name, expr in exprs.items()]
    rules.append({"record": RECORDED_WORKLOAD, "expr": f"last_over_time(({workload_expression()})[1h:1h])"})
    return {"name": "wattfleet-hourly-energy", "interval": interval, "rules": rules}
