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
from wattfleet.core.hourly_energy import LEGACY_GPU_MODEL_LABEL, OWNER_LABELS

__all__ = ["LEGACY_GPU_MODEL_LABEL", "OWNER_LABELS"]  # re-exported: defined with the hourly PromQL


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
    namespace: str | None
    team: str | None
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
ENERGY_LABEL_FIELDS = ("node", "cluster", "site_label", "device", "component", "domain", "gpu_model", "method",
                       "namespace", "team")
EnergyLabels = tuple[str, str, str, str, str, str, str | None, str, str | None, str | None]


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
            model, labels.get("method") or catalog.METHOD_MEASURED, labels.get("namespace") or None,
            labels.get("team") or None)


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
