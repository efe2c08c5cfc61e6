"""Hourly energy from any PromQL-compatible store (Prometheus, VictoriaMetrics, Thanos, Mimir).

``increase(metric[1h])`` evaluated at whole-hour ends with ``query_range``
and ``step=1h`` gives, at time T, the energy of the hour (T-1h, T]. One
query per metric per page of hours; pages are a day by default so a month of
a large fleet stays far inside Prometheus' 11,000 points-per-series limit and
each response stays small. The PromQL is built from the metric catalog.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from wattfleet.aggregator.ingest.batch import TelemetryBatch
from wattfleet.aggregator.ingest.prefetch import in_order
from wattfleet.aggregator.ingest.shards import node_matcher, node_shards
from wattfleet.aggregator.ingest.sinks import (
    CollectorErrorSink,
    EnergySink,
    InferenceSink,
    PromptTokenSink,
    WorkloadSink,
    inference_batch,
)
from wattfleet.aggregator.ingest.store_client import StoreAuth, StoreClient
from wattfleet.aggregator.ingest.telemetry import Telemetry, TelemetrySourceError
from wattfleet.core import catalog, hourly_energy

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
MAX_POINTS_PER_SERIES = 11_000  # Prometheus refuses query_range beyond this many steps
DEFAULT_SHARD_NODES = 500  # 4,000 GPUs of 8 per node: a day's answer of a few MB, parsed a series at a time


def _by(*labels: str) -> str:
    return ", ".join(labels)


def energy_queries(*matchers: str) -> dict[str, str]:
    """PromQL per energy metric (``core.hourly_energy``); ``matchers`` narrow it to one series shard.

    No ``namespace`` or ``team``: on a device series those are the scrape target's (the exporter
    pod's), not a workload's; who used the energy comes from :func:`workload_query` only.
    """
    return hourly_energy.energy_expressions(*matchers)


def workload_query(*matchers: str) -> str:
    """Hourly energy per node, component and workload (or share), pods summed (``core.hourly_energy``)."""
    return hourly_energy.workload_expression(*matchers)


def collector_errors_query(*matchers: str) -> str:
    """Readings rejected or failed per node, collector and reason and hour; hours without any are left out.

    Counted as energy is (``hourly_energy.per_target_increase``: an HA pair's
    copies once, an exporter replaced within the hour in full). The
    reason is kept whatever it is, so new reasons need no change here.
    """
    sel = hourly_energy.selector(catalog.COLLECTOR_ERRORS.series, *matchers)
    return f"{hourly_energy.per_target_increase(sel, catalog.COLLECTOR_ERRORS.all_labels)} > 0"


def inference_rejections_query(*matchers: str) -> str:
    """Engine page values the exporter refused, per node, engine and reason and hour (as collector errors)."""
    sel = hourly_energy.selector(catalog.INFERENCE_REJECTED.series, *matchers)
    return f"{hourly_energy.per_target_increase(sel, catalog.CONST_LABELS + ('engine', 'reason'))} > 0"


def inference_queries(*matchers: str) -> dict[str, str]:
    labels = catalog.CONST_LABELS + ("engine", "model", "phase")
    phase = hourly_energy.selector(catalog.INFERENCE_PHASE_ENERGY.series, *matchers)
    tokens = hourly_energy.selector(catalog.INFERENCE_TOKENS.series, *matchers)
    return {
        catalog.INFERENCE_PHASE_ENERGY.name: hourly_energy.per_target_increase(phase, labels),
        catalog.INFERENCE_TOKENS.name: hourly_energy.per_target_increase(tokens, labels),
    }


def prompt_tokens_query(*matchers: str) -> str:
    """Hourly prompt tokens per engine, model and source (computed, cached, transferred, unsplit).

    Counted as energy is (``hourly_energy.per_target_increase``); the
    ``source`` matcher keeps only the catalog's sources, so a label value the
    contract does not know is never summed into the split.
    """
    sources = "|".join(catalog.PROMPT_SOURCES)
    sel = hourly_energy.selector(catalog.INFERENCE_PROMPT_TOKENS.series, f'source=~"{sources}"', *matchers)
    return hourly_energy.per_target_increase(sel, catalog.INFERENCE_PROMPT_TOKENS.all_labels)


def inference_engine_queries() -> dict[str, str]:
    """Hourly PromQL for what ``stg_inference_hourly`` has no column for (aggregator/inference_fit.py).

    ``requests``: finished requests per engine and model. ``methods``: the
    phase-energy series with their ``method`` label (how the exporter or the
    serving code attributed them), so the report can name the method.
    ``attribution``: the exporter's statement of that method's assumption
    (``wattfleet_inference_phase_attribution_info``: chunked prefill counted
    as prefill, or phases timed apart), any seen in the hour.
    """
    engine_labels = catalog.CONST_LABELS + ("engine", "model")
    engine = _by(*engine_labels)
    info = catalog.INFERENCE_ATTRIBUTION
    return {
        "requests": hourly_energy.per_target_increase(catalog.INFERENCE_REQUESTS.series, engine_labels),
        "methods": hourly_energy.per_target_increase(catalog.INFERENCE_PHASE_ENERGY.series,
                                                     engine_labels + ("method",)),
        "attribution": f"max by ({engine}, method, chunked_prefill, assumption) (max_over_time({info.series}[1h]))",
    }


# The series whose nodes make the shards: every series the window queries read.
SHARDED_SERIES = (catalog.GPU_ENERGY, catalog.CPU_ENERGY, catalog.COLLECTOR_ERRORS, catalog.INFERENCE_REJECTED,
                  catalog.INFERENCE_PHASE_ENERGY, catalog.INFERENCE_TOKENS, catalog.INFERENCE_PROMPT_TOKENS,
                  catalog.WORKLOAD_ENERGY)


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
    max_response_bytes: int = 256 << 20
    shard_nodes: int = DEFAULT_SHARD_NODES
    pre_aggregated: bool = False
    prefetch: int = 2  # answers requested and parsed ahead of the one being written (requests in flight)

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

    def engine_nodes_matcher(self, start: datetime, end: datetime) -> str | None:
        """``node=~"..."`` of the nodes with an engine-to-GPU mapping in [start, end]; None when there is none.

        The token fit joins GPU energy with that mapping at a fine step; asking
        only for these nodes keeps a fleet's other GPUs out of the store's work.
        """
        nodes = self.client.get("label/node/values", [("match[]", catalog.INFERENCE_ENGINE_GPUS.series),
                                                      ("start", f"{_unix(start):.0f}"), ("end", f"{_unix(end):.0f}")])
        if not isinstance(nodes, list) or not nodes:
            return None
        return node_matcher([str(n) for n in nodes])

    # --- telemetry -------------------------------------------------------------
    def fetch(self, start: datetime, end: datetime) -> Telemetry:
        """Whole hours [start, end) (naive UTC) as row objects (small spans: tests, tools)."""
        hours = []
        t = start
        while t < end:
            hours.append(t)
            t += HOUR
        out = Telemetry(hours, [], [], [])
        for batch in self.batches(start, end):
            batch.extend_telemetry(out, self.name)
        return out

    def batches(self, start: datetime, end: datetime) -> Iterator[TelemetryBatch]:
        """Whole hours [start, end) as column batches, one per answer: memory bounded by shard and page.

        The nodes seen in the span are split into shards of ``shard_nodes``
        (``node=~"a|b|..."``); each shard's energy, inference and collector
        error queries are answered, streamed and yielded in turn. A fleet of
        any size is thus read with answers of at most ``shard_nodes`` nodes
        times ``page_hours`` hours. Up to ``prefetch`` next answers are
        requested and parsed in worker threads while the caller writes the
        last one (several requests in flight: the store computes one while
        another is parsed); 0 = all in the caller's thread.
        """
        yield from in_order(self._page_tasks(start, end), self.prefetch)

    def _page_tasks(self, start: datetime, end: datetime) -> Iterator[Callable[[], TelemetryBatch]]:
        if end <= start:
            return
        first_end = start + HOUR
        last_end = start + HOUR * math.ceil((end - start) / HOUR)
        shards = node_shards(self.client, [m.series for m in SHARDED_SERIES], start - HOUR, last_end,
                             self.shard_nodes)
        for matcher in shards:
            yield from self._shard_tasks(matcher, first_end, last_end)

    def _shard_tasks(self, matcher: str, first_end: datetime, last_end: datetime
                     ) -> list[Callable[[], TelemetryBatch]]:
        """One task per answer (the two inference answers are one: they fill one set of slots)."""
        check = self._energy_value
        shift = hourly_energy.RECORDED_READ_SHIFT_SECONDS if self.pre_aggregated else 0
        exprs = (hourly_energy.recorded_expressions(matcher) if self.pre_aggregated
                 else energy_queries(matcher))

        def energy(metric: catalog.Metric, expr: str) -> TelemetryBatch:
            sink = self.stream_range(expr, first_end, last_end, lambda: EnergySink(metric, check, shift),
                                     shift_seconds=shift)
            return TelemetryBatch(energy=sink.columns)

        def inference() -> TelemetryBatch:
            slots: dict[tuple[Any, ...], list[float]] = {}
            for index, expr in enumerate(inference_queries(matcher).values()):  # phase energy, then tokens
                self.stream_range(expr, first_end, last_end,
                                  lambda i=index: InferenceSink(check, slots, i)).commit()
            return TelemetryBatch(inference=inference_batch(slots))

        def collector_errors(expr: str) -> TelemetryBatch:
            sink = self.stream_range(expr, first_end, last_end, lambda: CollectorErrorSink(check))
            return TelemetryBatch(collector_errors=sink.columns)

        def prompt_tokens() -> TelemetryBatch:
            sink = self.stream_range(prompt_tokens_query(matcher), first_end, last_end,
                                     lambda: PromptTokenSink(check))
            return TelemetryBatch(prompt_tokens=sink.columns)

        def workload() -> TelemetryBatch:
            expr = (hourly_energy.recorded_workload_expression(matcher) if self.pre_aggregated
                    else workload_query(matcher))
            sink = self.stream_range(expr, first_end, last_end, lambda: WorkloadSink(check, shift),
                                     shift_seconds=shift)
            return TelemetryBatch(workload=sink.columns, collector_errors=sink.errors)

        tasks: list[Callable[[], TelemetryBatch]] = [
            functools.partial(energy, catalog.lookup(name), expr) for name, expr in exprs.items()]
        tasks.append(inference)
        tasks.extend(functools.partial(collector_errors, expr)
                     for expr in (collector_errors_query(matcher), inference_rejections_query(matcher)))
        tasks.extend((prompt_tokens, workload))
        return tasks

    def rule_group_status(self, group: str) -> str:
        """What the store's rules API says of a rule group: for the log when an hour stays unrecorded, never a decision.

        Prometheus (and Thanos or Mimir rulers) serve ``/api/v1/rules``; a store
        that does not, or that does not evaluate the group itself, is said as such.
        """
        try:
            data = self.client.get("rules", {"type": "record"})
        except TelemetrySourceError as exc:
            return f"the store's rules API did not answer ({exc})"
        groups = [g for g in (data.get("groups") or [] if isinstance(data, dict) else [])
                  if isinstance(g, dict) and g.get("name") == group]
        if not groups:
            return f"the store's rules API does not list group {group} (evaluated elsewhere, or not loaded)"
        said = []
        for g in groups:
            last = str(g.get("lastEvaluation") or "")
            when = f"last evaluated {last}" if last and not last.startswith("0001-") else "never evaluated"
            bad = [f"{r.get('name')} {r.get('health')}" + (f" ({r['lastError']})" if r.get("lastError") else "")
                   for r in g.get("rules") or [] if isinstance(r, dict) and r.get("health") not in ("ok", "unknown")]
            said.append(f"{g.get('file', '')}: {when}" + (f"; failing: {', '.join(bad)}" if bad else ""))
        return f"rules API, group {group}: " + "; ".join(said)

    def stream_range(self, expr: str, first_end: datetime, last_end: datetime, new_sink: Any,
                     shift_seconds: int = 0) -> Any:
        """``query_range`` at whole hour ends (plus ``shift_seconds``), step 1 h, series fed to a sink."""
        steps = int((last_end - first_end) / HOUR) + 1
        if steps > MAX_POINTS_PER_SERIES:
            raise ValueError(f"{steps} hourly points per series exceeds {MAX_POINTS_PER_SERIES}; page the range")
        shift = timedelta(seconds=shift_seconds)
        return self.client.stream_matrix("query_range", {"query": expr, "start": _unix(first_end + shift),
                                                         "end": _unix(last_end + shift), "step": "3600"}, new_sink)

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
    return (end - HOUR).replace(minute=0, second=0)  # floored: recorded series are read half an hour late


def _float(value: str) -> float:
    v = float(value)
    return v if v == v else 0.0  # NaN (0/0 extrapolation) carries no energy
