"""Hourly energy per device in PromQL: the one definition the aggregator reads and the recording rules record.

``sum by (<device labels>) (max by (<device labels>, <target>) (increase(<counter>[1h])))``
evaluated at a whole hour's end is the device's energy of that hour
(:func:`per_target_increase`): ``max`` over the copies of one target's series
so a target scraped twice (an HA pair) is not counted twice, ``sum`` over
targets so an exporter replaced within the hour (a new pod: a new series from
then on) counts both parts. The aggregator evaluates it itself
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

# Which target a series was scraped from: Prometheus' ``instance`` (the pod's address under the Prometheus
# Operator) and the chart's ``exporter_pod`` (a pod replaced under hostNetwork keeps the node's address). The
# copies of one target's series (an HA pair's replicas, two scrape jobs on one pod) agree on both and differ
# only in labels such as the replica's or ``job``: ``max`` counts them once. An exporter pod replaced within
# the hour (a rolling update: the old pod stops before the new one starts) leaves two series per device, each
# holding part of the hour: they differ in these labels and are summed (a ``max`` over them kept only the
# larger part; tests/dashboards/test_hourly_energy_live.py replaces one live). A label a store does not have
# is empty to PromQL and changes nothing.
TARGET_LABELS: tuple[str, ...] = ("instance", "exporter_pod")


def per_target_increase(sel: str, labels: tuple[str, ...], series_labels: tuple[str, ...] = ()) -> str:
    """``increase(sel[1h])`` by ``labels``: each target's copies counted once (``max``), targets summed.

    ``series_labels``: more labels that tell one target's series apart inside (summed over outside),
    e.g. the pods of the energy by workload.
    """
    inner = list(dict.fromkeys(series_labels + labels + TARGET_LABELS))
    return f"sum by ({', '.join(labels)}) (max by ({', '.join(inner)}) (increase({sel}[1h])))"


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
        catalog.GPU_ENERGY.name: per_target_increase(gpu, GPU_LABELS),
        catalog.CPU_ENERGY.name: per_target_increase(cpu, CPU_LABELS),
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
# every label that tells series apart and the target (TARGET_LABELS), so a target scraped twice counts once;
# outside, ``sum`` over pods, containers and targets, which come and go while the workload (the owner) stays.
# ``exported_*``: where a scrape without honor_labels met a target label of the same name, Prometheus keeps the
# series' own value under that name.
WORKLOAD_SERIES_LABELS: tuple[str, ...] = catalog.CONST_LABELS + (
    "component", "namespace", "exported_namespace", "pod", "exported_pod", "container", "exported_container",
    "workload", "share")
WORKLOAD_LABELS: tuple[str, ...] = catalog.CONST_LABELS + (
    "component", "namespace", "exported_namespace", "workload", "share")
RECORDED_WORKLOAD = "node_workload:wattfleet_workload_energy_joules:increase1h"


def workload_expression(*matchers: str) -> str:
    """Hourly energy by workload (evaluated at a whole hour's end: the hour before it)."""
    sel = selector(catalog.WORKLOAD_ENERGY.series, *matchers)
    return per_target_increase(sel, WORKLOAD_LABELS, WORKLOAD_SERIES_LABELS)


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
