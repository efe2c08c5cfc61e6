"""Hourly telemetry rows, the common shape of every telemetry source.

Prometheus (any PromQL store) and the embedded scraper both produce these,
so ingest and the SQL never care where energy came from. Which series make
IT energy is decided here from the catalog: GPU energy plus the CPU domains
in ``catalog.RAPL_IT_DOMAINS`` (package, dram); core and uncore are inside
package, and psys overlaps both, so adding any of them would double count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from wattfleet.core import catalog
from wattfleet.core.hourly_energy import LEGACY_GPU_MODEL_LABEL

__all__ = ["LEGACY_GPU_MODEL_LABEL"]  # re-exported: defined with the hourly PromQL

# Who used energy (namespace, workload, team) comes ONLY from the workload series
# (catalog.WORKLOAD_ENERGY), never from labels on device series: under the Prometheus Operator a
# device series carries the scrape target's own ``namespace`` (the exporter pod's), and keeping it
# credited the whole fleet to wattfleet's namespace (docs/accounting.md, section 20).


@dataclass(frozen=True)
class EnergyRow:
    """Energy of one device (or CPU domain) over the hour starting at ``hour_utc``."""

    hour_utc: datetime  # naive UTC, start of hour
    node: str
    cluster: str
    site_label: str
    device: str
    component: str  # gpu | cpu
    domain: str
    gpu_model: str | None
    method: str
    joules: float
    source: str


@dataclass(frozen=True)
class WorkloadRow:
    """Energy of one node component credited to one workload (or to one non-workload share) over an hour.

    Pods and containers are summed away: a workload is its owner (``deployment/web``, ``slurm/1234``),
    which outlives its pods. For shares other than ``workload`` namespace and workload are "".
    """

    hour_utc: datetime
    node: str
    cluster: str
    site_label: str
    component: str  # gpu | cpu | dram (catalog.WORKLOAD_COMPONENTS)
    namespace: str
    workload: str
    share: str  # catalog.WORKLOAD_SHARES
    joules: float
    source: str


@dataclass(frozen=True)
class InferenceRow:
    hour_utc: datetime
    node: str
    cluster: str
    site_label: str
    engine: str
    model: str
    phase: str
    energy_joules: float
    tokens: float
    source: str


# (hour_utc, node, cluster, site_label, engine, model, phase): the fields of an InferenceRow before its figures.
InferenceKey = tuple[datetime, str, str, str, str, str, str]


@dataclass(frozen=True)
class PromptTokenRow:
    """Prompt tokens of one engine and model over the hour, from one ``prompt_source``.

    The hourly increase of ``wattfleet_inference_prompt_tokens_total{source}``: computed, cached,
    transferred, or unsplit (the engine does not split them). ``source`` is the telemetry source, as on
    every staging row.
    """

    hour_utc: datetime
    node: str
    cluster: str
    site_label: str
    engine: str
    model: str
    prompt_source: str
    tokens: float
    source: str


def prompt_token_row_from_labels(labels: dict[str, str], hour_utc: datetime, tokens: float, source: str
                                 ) -> PromptTokenRow | None:
    """Map one prompt-token series' hourly increase to a row; None for a source outside the catalog's."""
    prompt_source = labels.get("source", "")
    if prompt_source not in catalog.PROMPT_SOURCES:
        return None
    return PromptTokenRow(hour_utc, labels.get("node", ""), labels.get("cluster", ""), labels.get("site", ""),
                          labels.get("engine", ""), labels.get("model", ""), prompt_source, max(float(tokens), 0.0),
                          source)


@dataclass(frozen=True)
class CollectorErrorRow:
    """Readings one collector of one node rejected or failed to take over the hour, for one reason.

    The hourly increase of ``wattfleet_collector_errors_total``: none of these
    readings is in any energy row, so the report can say how many were left out.
    """

    hour_utc: datetime
    node: str
    cluster: str
    site_label: str
    collector: str
    reason: str
    readings: float
    source: str


@dataclass
class Telemetry:
    """Rows for a span of hours; ``hours`` lists every hour the source answered for (even with no rows)."""

    hours: list[datetime]
    energy: list[EnergyRow]
    inference: list[InferenceRow]
    collector_errors: list[CollectorErrorRow] = field(default_factory=list)
    prompt_tokens: list[PromptTokenRow] = field(default_factory=list)
    workload: list[WorkloadRow] = field(default_factory=list)


class TelemetrySource(Protocol):
    name: str
    page_hours: int

    def fetch(self, start: datetime, end: datetime) -> Telemetry:
        """Hourly rows for whole hours in [start, end) (naive UTC, hour-aligned)."""
        ...


class TelemetrySourceError(RuntimeError):
    """The telemetry store could not answer (down, refused, bad response)."""


def it_cpu_domains() -> tuple[str, ...]:
    return catalog.RAPL_IT_DOMAINS


# The fields an energy row takes from its series' labels, in EnergyRow's order (between hour_utc and joules).
ENERGY_LABEL_FIELDS = ("node", "cluster", "site_label", "device", "component", "domain", "gpu_model", "method")
EnergyLabels = tuple[str, str, str, str, str, str, str | None, str]


def energy_fields_from_labels(metric: catalog.Metric, labels: dict[str, str]) -> EnergyLabels | None:
    """One series' labels as :data:`ENERGY_LABEL_FIELDS`; None for series that are not IT energy."""
    if metric is catalog.GPU_ENERGY:
        component, domain = "gpu", "gpu"
        device = labels.get("gpu") or labels.get("uuid") or ""
        model = labels.get("gpu_model") or labels.get(LEGACY_GPU_MODEL_LABEL) or None
    elif metric is catalog.CPU_ENERGY:
        domain = labels.get("domain", "")
        if domain not in catalog.RAPL_IT_DOMAINS:
            return None
        component, model = "cpu", None
        device = f"socket{labels.get('socket', '')}"
    else:
        raise ValueError(f"{metric.name} is not an energy metric")
    return (labels.get("node", ""), labels.get("cluster", ""), labels.get("site", ""), device, component, domain,
            model, labels.get("method") or catalog.METHOD_MEASURED)


def energy_row_from_labels(metric: catalog.Metric, labels: dict[str, str], hour_utc: datetime, joules: float,
                           source: str) -> EnergyRow | None:
    """Map one series' labels to an :class:`EnergyRow`; None for series that are not IT energy."""
    fields = energy_fields_from_labels(metric, labels)
    if fields is None:
        return None
    return EnergyRow(hour_utc, *fields, max(float(joules), 0.0), source)


def collector_error_row_from_labels(labels: dict[str, str], hour_utc: datetime, readings: float, source: str
                                    ) -> CollectorErrorRow | None:
    """Map one ``collector_errors`` (or ``inference_rejected_samples``) series' hourly increase to a row.

    None when nothing was rejected. Engine rejections become collector ``inference:<engine>``.

    Any collector and reason is kept as named, so a reason added to the
    exporter later reaches the report without a change here.
    """
    if not readings > 0:
        return None
    collector = labels.get("collector", "")
    if not collector and labels.get("engine"):
        # wattfleet_inference_rejected_samples_total: values of one engine's page, by engine
        collector = f"inference:{labels['engine']}"
    return CollectorErrorRow(hour_utc, labels.get("node", ""), labels.get("cluster", ""), labels.get("site", ""),
                             collector, labels.get("reason", ""), float(readings), source)


# The collector and reason under which workload series that break the contract are counted
# (wattfleet_collector_errors' table in the report), never summed.
WORKLOAD_COLLECTOR = "workload_attribution"
WORKLOAD_BAD_LABELS = "invalid_labels"
# The fields a workload row takes from its series' labels, in WorkloadRow's order (between hour_utc and joules).
WORKLOAD_LABEL_FIELDS = ("node", "cluster", "site_label", "component", "namespace", "workload", "share")
WorkloadLabels = tuple[str, str, str, str, str, str, str]


def workload_fields_from_labels(labels: dict[str, str]) -> WorkloadLabels | None:
    """One ``workload_energy`` series' labels as :data:`WORKLOAD_LABEL_FIELDS`; None when its component or
    share is not the contract's (catalog.WORKLOAD_COMPONENTS, WORKLOAD_SHARES).

    The namespace is read only where ``share="workload"``: on the other shares the exporter leaves it
    empty, and an empty label is absent to Prometheus, so a scrape layer that adds the target's own
    ``namespace`` (the Prometheus Operator does) would otherwise credit idle and system energy to the
    exporter's namespace. ``exported_namespace`` wins where a scrape without ``honor_labels`` moved
    the series' own label there.
    """
    component, share = labels.get("component", ""), labels.get("share", "")
    if component not in catalog.WORKLOAD_COMPONENTS or share not in catalog.WORKLOAD_SHARES:
        return None
    if share == "workload":
        namespace = labels.get("exported_namespace") or labels.get("namespace") or ""
        workload = labels.get("workload", "")
    else:
        namespace = workload = ""
    return (labels.get("node", ""), labels.get("cluster", ""), labels.get("site", ""), component, namespace,
            workload, share)


def workload_rows(series: list[tuple[dict[str, str], datetime, float]], source: str
                  ) -> tuple[list[WorkloadRow], list[CollectorErrorRow]]:
    """Hourly workload rows from (labels, hour, joules) of ``workload_energy`` series, pods summed away.

    A series whose component or share the contract does not know is not summed: it is counted as a
    rejected reading of collector ``workload_attribution`` (reason ``invalid_labels``) per hour.
    """
    sums: dict[tuple[datetime, WorkloadLabels], float] = {}
    bad: dict[tuple[datetime, str, str, str], float] = {}
    for labels, hour, joules in series:
        fields = workload_fields_from_labels(labels)
        if fields is None:
            node_key = (hour, labels.get("node", ""), labels.get("cluster", ""), labels.get("site", ""))
            bad[node_key] = bad.get(node_key, 0.0) + 1.0
            continue
        key = (hour, fields)
        sums[key] = sums.get(key, 0.0) + max(float(joules), 0.0)
    rows = [WorkloadRow(hour, *fields, v, source) for (hour, fields), v in sums.items()]
    errors = [CollectorErrorRow(h, n, c, s, WORKLOAD_COLLECTOR, WORKLOAD_BAD_LABELS, count, source)
              for (h, n, c, s), count in bad.items()]
    return rows, errors
