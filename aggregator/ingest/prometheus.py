"""Hourly energy from any PromQL-compatible store (Prometheus, VictoriaMetrics, Thanos, Mimir).

``increase(metric[1h])`` evaluated at whole-hour ends with ``query_range``
and ``step=1h`` gives, at time T, the energy of the hour (T-1h, T]. One
query per metric per page of hours; pages are a day by default so a month of
a large fleet stays far inside Prometheus' 11,000 points-per-series limit and
each response stays small. The PromQL is built from the metric catalog.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from wattfleet.aggregator.ingest.store_client import StoreAuth, StoreClient
from wattfleet.aggregator.ingest.telemetry import (
    LEGACY_GPU_MODEL_LABEL,
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
from wattfleet.core import catalog

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
MAX_POINTS_PER_SERIES = 11_000  # Prometheus refuses query_range beyond this many steps


def _by(*labels: str) -> str:
    return ", ".join(labels)


def energy_queries() -> dict[str, str]:
    """PromQL per energy metric; ``max by`` so a target scraped twice (HA pair) is not counted twice.

    No ``namespace`` or ``team``: on a device series those are the scrape target's (the exporter
    pod's), not a workload's; who used the energy comes from :func:`workload_query` only.
    """
    # LEGACY_GPU_MODEL_LABEL too: an exporter older than the gpu_model rename labels the board ``model``;
    # kept apart in ``by`` so an hour that spans the upgrade adds the old and new series (never max of both).
    gpu_labels = catalog.CONST_LABELS + ("gpu", "gpu_model", LEGACY_GPU_MODEL_LABEL, "method")
    cpu_labels = catalog.CONST_LABELS + ("socket", "domain", "method")
    domains = "|".join(catalog.RAPL_IT_DOMAINS)
    return {
        catalog.GPU_ENERGY.name: f"max by ({_by(*gpu_labels)}) (increase({catalog.GPU_ENERGY.series}[1h]))",
        catalog.CPU_ENERGY.name: f'max by ({_by(*cpu_labels)}) '
                                 f'(increase({catalog.CPU_ENERGY.series}{{domain=~"{domains}"}}[1h]))',
    }


# Where a scrape without honor_labels met a target label of the same name, Prometheus keeps the
# series' own value under ``exported_<name>``; both spellings are kept and resolved in telemetry.
_WORKLOAD_SERIES_LABELS = ("component", "namespace", "exported_namespace", "pod", "exported_pod", "container",
                           "exported_container", "workload", "share")


def workload_query() -> str:
    """Hourly energy per node, component and workload (or share), pods and containers summed.

    Inside: ``max by`` every label that tells series apart, so a target scraped twice counts once
    (as for device energy); outside: ``sum`` over pods and containers, which come and go while the
    workload (the owner) stays.
    """
    inner = _by(*catalog.CONST_LABELS, *_WORKLOAD_SERIES_LABELS)
    outer = _by(*catalog.CONST_LABELS, "component", "namespace", "exported_namespace", "workload", "share")
    return (f"sum by ({outer}) (max by ({inner}) "
            f"(increase({catalog.WORKLOAD_ENERGY.series}[1h])))")


def collector_errors_query() -> str:
    """Readings rejected or failed per node, collector and reason and hour; hours without any are left out.

    ``max by`` as for energy (an HA pair scrapes each exporter twice). The
    reason is kept whatever it is, so new reasons need no change here.
    """
    labels = _by(*catalog.COLLECTOR_ERRORS.all_labels)
    return f"max by ({labels}) (increase({catalog.COLLECTOR_ERRORS.series}[1h])) > 0"


def inference_rejections_query() -> str:
    """Engine page values the exporter refused, per node, engine and reason and hour (as collector errors)."""
    labels = _by(*catalog.CONST_LABELS, "engine", "reason")
    return f"max by ({labels}) (increase({catalog.INFERENCE_REJECTED.series}[1h])) > 0"


def inference_queries() -> dict[str, str]:
    labels = _by(*(catalog.CONST_LABELS + ("engine", "model", "phase")))
    return {
        catalog.INFERENCE_PHASE_ENERGY.name:
            f"max by ({labels}) (increase({catalog.INFERENCE_PHASE_ENERGY.series}[1h]))",
        catalog.INFERENCE_TOKENS.name: f"max by ({labels}) (increase({catalog.INFERENCE_TOKENS.series}[1h]))",
    }


def prompt_tokens_query() -> str:
    """Hourly prompt tokens per engine, model and source (computed, cached, transferred, unsplit).

    ``max by`` as for energy (an HA pair scrapes each exporter twice); the
    ``source`` matcher keeps only the catalog's sources, so a label value the
    contract does not know is never summed into the split.
    """
    labels = _by(*catalog.INFERENCE_PROMPT_TOKENS.all_labels)
    sources = "|".join(catalog.PROMPT_SOURCES)
    return (f'max by ({labels}) (increase({catalog.INFERENCE_PROMPT_TOKENS.series}{{source=~"{sources}"}}[1h]))')


def inference_engine_queries() -> dict[str, str]:
    """Hourly PromQL for what ``stg_inference_hourly`` has no column for (aggregator/inference_fit.py).

    ``requests``: finished requests per engine and model. ``methods``: the
    phase-energy series with their ``method`` label (how the exporter or the
    serving code attributed them), so the report can name the method.
    """
    engine = _by(*(catalog.CONST_LABELS + ("engine", "model")))
    return {
        "requests": f"max by ({engine}) (increase({catalog.INFERENCE_REQUESTS.series}[1h]))",
        "methods": f"max by ({engine}, method) (increase({catalog.INFERENCE_PHASE_ENERGY.series}[1h]))",
    }


@dataclass
class PrometheusSource:
    """Reads hourly energy through ``/api/v1/query_range`` (HTTP details in :mod:`.store_client`).

    ``retries`` with exponential backoff ride out a restarting server; after
    that :class:`TelemetrySourceError` stops the run before the window is
    written, so nothing partial is stored. Credentials come from ``auth``;
    ``bearer_token`` / ``basic_auth`` and the environment variables
    WATTFLEET_PROMETHEUS_TOKEN / WATTFLEET_PROMETHEUS_USER / _PASSWORD still
    fill it where it leaves them unset. ``timeout`` is the deadline of one
    whole request.
    """

    url: str
    page_hours: int = 24
    timeout: float = 60.0
    retries: int = 3
    backoff_seconds: float = 1.0
    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    name: str = "prometheus"
    auth: StoreAuth = field(default_factory=StoreAuth)
    max_response_bytes: int = 64 << 20

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        if not 1 <= self.page_hours <= MAX_POINTS_PER_SERIES:
            raise ValueError(f"page_hours must be 1..{MAX_POINTS_PER_SERIES}")
        auth = self.auth
        auth.bearer_token = auth.bearer_token or self.bearer_token or os.environ.get("WATTFLEET_PROMETHEUS_TOKEN")
        if auth.basic_auth is None:
            auth.basic_auth = self.basic_auth
        if auth.basic_auth is None and os.environ.get("WATTFLEET_PROMETHEUS_USER"):
            auth.basic_auth = (os.environ["WATTFLEET_PROMETHEUS_USER"],
                               os.environ.get("WATTFLEET_PROMETHEUS_PASSWORD", ""))
        self.bearer_token, self.basic_auth = auth.bearer_token, auth.basic_auth  # what is in effect
        self.client = StoreClient(self.url, auth, deadline_seconds=self.timeout,
                                  max_response_bytes=self.max_response_bytes, retries=self.retries,
                                  backoff_seconds=self.backoff_seconds)

    @property
    def queries_made(self) -> int:
        return self.client.requests_made

    def _request(self, path: str, params: dict[str, Any]) -> Any:
        data = self.client.post(path, params)
        if not isinstance(data, dict):
            raise TelemetrySourceError(f"{self.url}: answer has no data object for {params.get('query')!r}")
        return data

    def query_range(self, expr: str, first_end: datetime, last_end: datetime) -> list[dict[str, Any]]:
        steps = int((last_end - first_end) / HOUR) + 1
        if steps > MAX_POINTS_PER_SERIES:
            raise ValueError(f"{steps} hourly points per series exceeds {MAX_POINTS_PER_SERIES}; page the range")
        data = self._request("query_range", {"query": expr, "start": _unix(first_end), "end": _unix(last_end),
                                             "step": "3600"})
        if data.get("resultType") != "matrix":
            raise TelemetrySourceError(f"{self.url}: expected a matrix for {expr!r}, got {data.get('resultType')}")
        return data["result"]

    def query_range_step(self, expr: str, start: datetime, end: datetime, step_seconds: float
                         ) -> list[dict[str, Any]]:
        """Raw ``query_range`` with any step (the token fit's intervals), paged under the points limit.

        Pages share their boundary step; values are merged per series, so the
        caller sees one matrix for [start, end] whatever the length.
        """
        step = timedelta(seconds=step_seconds)
        page = step * (MAX_POINTS_PER_SERIES - 1)
        merged: dict[tuple[tuple[str, str], ...], dict[float, str]] = {}
        t = start
        while True:
            page_end = min(end, t + page)
            data = self._request("query_range", {"query": expr, "start": _unix(t), "end": _unix(page_end),
                                                 "step": f"{step_seconds:g}"})
            if data.get("resultType") != "matrix":
                raise TelemetrySourceError(f"{self.url}: expected a matrix for {expr!r}, "
                                           f"got {data.get('resultType')}")
            for series in data["result"]:
                key = tuple(sorted(series["metric"].items()))
                merged.setdefault(key, {}).update({float(ts): v for ts, v in series["values"]})
            if page_end >= end:
                break
            t = page_end
        return [{"metric": dict(k), "values": [[ts, v] for ts, v in sorted(values.items())]}
                for k, values in merged.items()]

    # --- telemetry -------------------------------------------------------------
    def fetch(self, start: datetime, end: datetime) -> Telemetry:
        """Whole hours [start, end) (naive UTC): one query per metric for the span."""
        hours = []
        t = start
        while t < end:
            hours.append(t)
            t += HOUR
        if not hours:
            return Telemetry([], [], [])
        first_end, last_end = hours[0] + HOUR, hours[-1] + HOUR
        energy: list[EnergyRow] = []
        for metric_name, expr in energy_queries().items():
            metric = catalog.lookup(metric_name)
            for series in self.query_range(expr, first_end, last_end):
                labels = series["metric"]
                for ts, value in series["values"]:
                    joules = self._energy_value(value, labels, ts)
                    row = energy_row_from_labels(metric, labels, _hour_start(ts), joules, self.name)
                    if row is not None:
                        energy.append(row)
        inference: dict[InferenceKey, list[float]] = {}
        for metric_name, expr in inference_queries().items():
            is_tokens = metric_name == catalog.INFERENCE_TOKENS.name
            for series in self.query_range(expr, first_end, last_end):
                m = series["metric"]
                for ts, value in series["values"]:
                    key = (_hour_start(ts), m.get("node", ""), m.get("cluster", ""), m.get("site", ""),
                           m.get("engine", ""), m.get("model", ""), m.get("phase", ""))
                    slot = inference.setdefault(key, [0.0, 0.0])
                    slot[1 if is_tokens else 0] += self._energy_value(value, m, ts)
        rows = [InferenceRow(*k, energy_joules=v[0], tokens=v[1], source=self.name) for k, v in inference.items()]
        workload, workload_errors = workload_rows(
            [(series["metric"], _hour_start(ts), self._energy_value(value, series["metric"], ts))
             for series in self.query_range(workload_query(), first_end, last_end)
             for ts, value in series["values"]], self.name)
        errors = self._collector_errors(first_end, last_end) + workload_errors
        return Telemetry(hours, energy, rows, errors, self._prompt_tokens(first_end, last_end), workload=workload)

    def _prompt_tokens(self, first_end: datetime, last_end: datetime) -> list[PromptTokenRow]:
        """Prompt tokens per source and hour, checked like energy (a broken series stops the window)."""
        out = []
        for series in self.query_range(prompt_tokens_query(), first_end, last_end):
            labels = series["metric"]
            for ts, value in series["values"]:
                row = prompt_token_row_from_labels(labels, _hour_start(ts), self._energy_value(value, labels, ts),
                                                   self.name)
                if row is not None:
                    out.append(row)
        return out

    def _collector_errors(self, first_end: datetime, last_end: datetime) -> list[CollectorErrorRow]:
        """Rejected and failed readings per hour, checked like energy (a broken series stops the window)."""
        out = []
        series_list = (self.query_range(collector_errors_query(), first_end, last_end)
                       + self.query_range(inference_rejections_query(), first_end, last_end))
        for series in series_list:
            labels = series["metric"]
            for ts, value in series["values"]:
                row = collector_error_row_from_labels(labels, _hour_start(ts), self._energy_value(value, labels, ts),
                                                      self.name)
                if row is not None:
                    out.append(row)
        return out


    def _energy_value(self, value: str, labels: dict[str, str], ts: float) -> float:
        """An hourly increase as stored; anything not finite or below zero stops the window, named.

        ``increase()`` of a counter is never negative and never infinite; such a
        value means a broken series (an exporter that re-exported +Inf, a
        counter written by hand), and summing it would corrupt every total
        after it. Nothing of the window is written; the message names the
        series, the hour and the store so it can be deleted or fixed there.
        """
        v = _float(value)
        if not math.isfinite(v) or v < 0:
            hour = _hour_start(ts).strftime("%Y-%m-%d %H:00 UTC")
            series = "{" + ", ".join(f'{k}="{val}"' for k, val in sorted(labels.items())) + "}"
            raise TelemetrySourceError(f"{self.url} ({self.name}): series {series}, hour {hour}: "
                                       f"increase is {value}, not a finite non-negative amount; "
                                       "nothing written for this window")
        return v


def _unix(dt: datetime) -> float:
    return dt.replace(tzinfo=timezone.utc).timestamp() if dt.tzinfo is None else dt.timestamp()


def _hour_start(ts: float) -> datetime:
    """A sample at T (an hour end) belongs to the hour starting T-1h (naive UTC)."""
    end = datetime.fromtimestamp(round(float(ts)), tz=timezone.utc).replace(tzinfo=None)
    return end - HOUR


def _float(value: str) -> float:
    v = float(value)
    return v if v == v else 0.0  # NaN (0/0 extrapolation) carries no energy
