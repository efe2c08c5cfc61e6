"""Embedded mode: for a small fleet without Prometheus, scrape exporters directly.

Samples of the energy, inference and collector-error counters are stored raw in DuckDB
(``emb_sample``); hourly energy is computed in SQL from counter deltas
(``sql/embedded_hourly.sql``) with reset handling, so the rest of the
pipeline sees exactly what the Prometheus source would give it.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import duckdb
from prometheus_client.parser import text_string_to_metric_families

from wattfleet import sql
from wattfleet.aggregator.ingest.telemetry import (
    CollectorErrorRow,
    EnergyRow,
    InferenceKey,
    InferenceRow,
    PromptTokenRow,
    Telemetry,
    TelemetrySourceError,
    collector_error_row_from_labels,
    energy_row_from_labels,
    prompt_token_row_from_labels,
    workload_rows,
)
from wattfleet.aggregator.store.connection import naive_utc
from wattfleet.core import catalog

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
# The counters embedded mode keeps: IT energy, per-phase inference figures, and the readings the
# exporter rejected or failed to take (counted in the report, never summed).
KEPT = (catalog.GPU_ENERGY, catalog.CPU_ENERGY, catalog.INFERENCE_PHASE_ENERGY, catalog.INFERENCE_TOKENS,
        catalog.COLLECTOR_ERRORS, catalog.INFERENCE_REJECTED, catalog.INFERENCE_PROMPT_TOKENS,
        catalog.WORKLOAD_ENERGY)
# Kept for the inference step (aggregator/inference/embedded_inputs.py), not telemetry rows: finished
# requests, each engine's GPU mapping (the token fit's energy) and its stated attribution assumption.
KEPT_FOR_INFERENCE = (catalog.INFERENCE_REQUESTS, catalog.INFERENCE_ENGINE_GPUS, catalog.INFERENCE_ATTRIBUTION)


_WANTED = {m.series: m for m in KEPT + KEPT_FOR_INFERENCE}
_PREFIXES = tuple(f"{name}{sep}" for name in _WANTED for sep in ("{", " "))
# The plainest line of the text format, as the exporter writes every line: name{label="value",...} value,
# label values without backslash or quote (so nothing to unescape), a value without timestamp. Such a line
# says the same to this expression as to prometheus_client's parser; every other line goes to that parser.
_PLAIN_LINE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*",)*'
                         r'(?:[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")?)\} ([-+0-9.eEaInfN]+)')
_PLAIN_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\]*)"')


def _keep(metric: catalog.Metric, labels: dict[str, str]) -> bool:
    if metric is catalog.CPU_ENERGY and labels.get("domain") not in catalog.RAPL_IT_DOMAINS:
        return False  # core/uncore are inside package; psys overlaps: never stored, never summed
    if metric is catalog.INFERENCE_PROMPT_TOKENS and labels.get("source") not in catalog.PROMPT_SOURCES:
        return False  # a prompt source the contract does not know is never stored nor summed
    return True


def parse_exposition(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(family name, labels, value) for the kept counters in a text exposition.

    The parser is the cost of a scrape (the demo scrapes three nodes ~9,000 times): only the kept
    series' lines are read, plain lines (:data:`_PLAIN_LINE`) by one regular expression, the rest
    (escapes, timestamps, odd spacing, repeated labels, ``__name__``) by prometheus_client's parser as
    before.
    """
    out = []
    rest = []
    for line in text.splitlines():
        if not line.startswith(_PREFIXES):
            continue
        plain = _PLAIN_LINE.fullmatch(line)
        pairs = _PLAIN_LABEL.findall(plain.group(2)) if plain is not None else []
        labels = dict(pairs)
        if plain is None or len(labels) != len(pairs) or "__name__" in labels:
            rest.append(line)  # a repeated label is the parser's to refuse
            continue
        value = float(plain.group(3))  # an unreadable value fails the page, as in the parser
        metric = _WANTED.get(plain.group(1))
        if metric is not None and _keep(metric, labels):
            out.append((metric.name, labels, value))
    if not rest:
        return out
    for family in text_string_to_metric_families("\n".join(rest) + "\n"):
        for sample in family.samples:
            metric = _WANTED.get(sample.name)
            if metric is not None and _keep(metric, sample.labels):
                out.append((metric.name, dict(sample.labels), float(sample.value)))
    return out


@dataclass
class EmbeddedScraper:
    """Scrapes ``targets`` (host:port or URLs) into ``emb_sample``."""

    con: duckdb.DuckDBPyConnection
    targets: list[str]
    timeout: float = 10.0
    errors: dict[str, str] = field(default_factory=dict)

    def url(self, target: str) -> str:
        if target.startswith(("http://", "https://")):
            return target if target.rstrip("/").endswith("/metrics") else target.rstrip("/") + "/metrics"
        return f"http://{target}/metrics"

    def scrape_once(self, now: datetime | None = None) -> int:
        """One scrape of every target; a failing target is logged and skipped. Returns samples stored."""
        ts = naive_utc(now or datetime.now(timezone.utc))
        rows = []
        self.errors = {}
        for target in self.targets:
            try:
                with urllib.request.urlopen(self.url(target), timeout=self.timeout) as r:
                    text = r.read().decode()
                samples = parse_exposition(text)
            except (OSError, ValueError) as exc:
                self.errors[target] = str(exc)
                log.warning("scrape of %s failed: %s", target, exc)
                continue
            rows += [(ts, target, name, json.dumps(labels, sort_keys=True), value) for name, labels, value in samples]
        if rows:
            self.con.execute(sql.load("staging/embedded.sql#insert_samples"),
                             {"ts": ts, "targets": [r[1] for r in rows], "metrics": [r[2] for r in rows],
                              "labels": [r[3] for r in rows], "values": [r[4] for r in rows]})
        return len(rows)

    def prune(self, before: datetime) -> None:
        """Drop samples no longer needed (older than ``before``), keeping the file small."""
        self.con.execute(sql.load("staging/embedded.sql#prune"), {"before": naive_utc(before)})


@dataclass
class EmbeddedSource:
    """A :class:`~.telemetry.TelemetrySource` over the stored samples."""

    con: duckdb.DuckDBPyConnection
    name: str = "embedded"
    page_hours: int = 24

    def fetch(self, start: datetime, end: datetime) -> Telemetry:
        try:
            result = self.con.execute(sql.load("staging/embedded.sql#hourly_increase"),
                                      {"start": naive_utc(start), "end": naive_utc(end)}).fetchall()
        except duckdb.Error as exc:
            raise TelemetrySourceError(f"embedded samples: {exc}") from exc
        hours = []
        t = naive_utc(start)
        while t < naive_utc(end):
            hours.append(t)
            t += HOUR
        energy: list[EnergyRow] = []
        inference: dict[InferenceKey, list[float]] = {}
        errors: list[CollectorErrorRow] = []
        workload_series: list[tuple[dict[str, str], datetime, float]] = []
        prompt: list[PromptTokenRow] = []
        for hour, metric_name, labels_json, increase in result:
            metric = catalog.lookup(metric_name)
            if metric in KEPT_FOR_INFERENCE:
                continue  # the inference step reads these (requests, GPU mapping, attribution)
            labels = json.loads(labels_json)
            if metric is catalog.WORKLOAD_ENERGY:
                workload_series.append((labels, hour, increase))
            elif metric in (catalog.COLLECTOR_ERRORS, catalog.INFERENCE_REJECTED):
                error = collector_error_row_from_labels(labels, hour, increase, self.name)
                if error is not None:
                    errors.append(error)
            elif metric is catalog.INFERENCE_PROMPT_TOKENS:
                prompt_row = prompt_token_row_from_labels(labels, hour, increase, self.name)
                if prompt_row is not None:
                    prompt.append(prompt_row)
            elif metric in (catalog.GPU_ENERGY, catalog.CPU_ENERGY):
                row = energy_row_from_labels(metric, labels, hour, increase, self.name)
                if row is not None:
                    energy.append(row)
            else:
                key = (hour, labels.get("node", ""), labels.get("cluster", ""), labels.get("site", ""),
                       labels.get("engine", ""), labels.get("model", ""), labels.get("phase", ""))
                slot = inference.setdefault(key, [0.0, 0.0])
                if metric is catalog.INFERENCE_TOKENS:
                    slot[1] += max(increase, 0.0)
                else:  # one phase's energy under two attribution methods is one energy: max, as the PromQL does
                    slot[0] = max(slot[0], increase)
        rows = [InferenceRow(*k, energy_joules=v[0], tokens=v[1], source=self.name) for k, v in inference.items()]
        workload, workload_errors = workload_rows(workload_series, self.name)
        return Telemetry(hours, energy, rows, errors + workload_errors, prompt, workload=workload)


def split_targets(values: Iterable[str]) -> list[str]:
    """``--embedded-targets a:1,b:2 --embedded-targets c:3`` -> [a:1, b:2, c:3]."""
    return [t.strip() for v in values for t in v.split(",") if t.strip()]
