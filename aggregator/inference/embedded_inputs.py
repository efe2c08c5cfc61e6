"""The inference step's inputs from embedded-mode samples (no Prometheus): what the PromQL gives otherwise.

Embedded mode (``wattfleet demo``, small fleets) stores raw counter samples in ``emb_sample``. The
inference step needs two things from them, in the shapes the PromQL path gives:

* per engine, model, node and hour: finished requests, the ``method`` of its phase energy and the
  exporter's stated attribution assumption (from the hourly increases ``staging/embedded.sql`` computes
  for every kept series);
* for the token fit: cumulative GPU energy of each engine's GPUs (summed through its
  ``inference_engine_gpu`` mapping), tokens by phase and cached prompt tokens at each scrape, and which
  engines have measured phase energy. These are answered as the matrices of
  :func:`~.phase_estimator.interval_queries`' expressions, so :func:`~.phase_estimator.token_fit` runs
  unchanged. One scrape round stores every target at one timestamp, so the series line up; rounds closer
  than the fit's step are thinned to the last one in each step.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import duckdb

from wattfleet import sql
from wattfleet.aggregator.inference.phase_estimator import ENGINE_KEY, Matrix, interval_queries
from wattfleet.core import catalog

# (hour, node, cluster, site, engine, model) -> [methods, requests, attributions]
EngineHourly = dict[tuple[Any, ...], list[Any]]
FIT_METRICS = (catalog.GPU_ENERGY, catalog.INFERENCE_ENGINE_GPUS, catalog.INFERENCE_TOKENS,
               catalog.INFERENCE_PROMPT_TOKENS, catalog.INFERENCE_PHASE_ENERGY)


def _key(labels: dict[str, str]) -> tuple[str, ...]:
    return tuple(labels.get(label, "") for label in ENGINE_KEY)


@dataclass
class EmbeddedInferenceInputs:
    """Answers the inference step's questions from ``emb_sample`` (``name`` is the telemetry source's)."""

    con: duckdb.DuckDBPyConnection
    name: str = "embedded"
    _answers: dict[str, Matrix] = field(default_factory=dict)

    def engine_hourly(self, start: datetime, end: datetime, attribution_text: Callable[[dict[str, str]], str]
                      ) -> EngineHourly:
        """Requests, methods and stated attributions per engine, model, node and hour in [start, end)."""
        rows = self.con.execute(sql.load("staging/embedded.sql#hourly_increase"), {"start": start, "end": end})
        out: EngineHourly = {}
        wanted = {catalog.INFERENCE_REQUESTS.name, catalog.INFERENCE_PHASE_ENERGY.name,
                  catalog.INFERENCE_ATTRIBUTION.name}
        for hour, metric, labels_json, increase in rows.fetchall():
            if metric not in wanted:
                continue
            labels = json.loads(labels_json)
            slot = out.setdefault((hour, *_key(labels)), [set(), 0.0, set()])
            if metric == catalog.INFERENCE_REQUESTS.name:
                slot[1] += max(float(increase), 0.0)
            elif metric == catalog.INFERENCE_ATTRIBUTION.name:
                slot[2].add(attribution_text(labels))
            elif labels.get("method") and labels["method"] != catalog.PHASE_METHOD_TOKEN_FIT:
                slot[0].add(labels["method"])
        return out

    def fit_query(self, expr: str, start: datetime, end: datetime, step_seconds: float) -> Matrix:
        """The matrix the PromQL ``expr`` (one of :func:`interval_queries`) would give over [start, end]."""
        if not self._answers:
            self._answers = self._fit_matrices(start, end, step_seconds)
        return self._answers.get(expr, [])

    def _fit_matrices(self, start: datetime, end: datetime, step_seconds: float) -> dict[str, Matrix]:
        samples = self.con.execute(sql.load("staging/embedded.sql#fit_samples"),
                                   {"start": start, "end": end, "metrics": [m.name for m in FIT_METRICS]}).fetchall()
        # thin scrape rounds to the last one in each step, so an interval spans at least one step
        last_in_step: dict[int, float] = {}
        for ts, *_ in samples:
            t = _unix(ts)
            last_in_step[int(t // step_seconds)] = max(t, last_in_step.get(int(t // step_seconds), t))
        keep = set(last_in_step.values())
        # value per (metric, labels) per time: the same series scraped from two targets counts once
        values: dict[tuple[str, str], dict[float, float]] = defaultdict(dict)
        for ts, metric, labels_json, value in samples:
            t = _unix(ts)
            if t in keep:
                series = values[(metric, labels_json)]
                series[t] = max(float(value), series.get(t, float("-inf")))
        gpu_energy: dict[tuple[str, ...], dict[float, float]] = defaultdict(lambda: defaultdict(float))
        mapping: dict[tuple[str, ...], dict[float, set[str]]] = defaultdict(lambda: defaultdict(set))
        tokens: dict[tuple[tuple[str, ...], str], dict[float, float]] = defaultdict(lambda: defaultdict(float))
        cached: dict[tuple[str, ...], dict[float, float]] = defaultdict(lambda: defaultdict(float))
        measured: set[tuple[str, ...]] = set()
        for (metric, labels_json), by_time in values.items():
            labels = json.loads(labels_json)
            if metric == catalog.GPU_ENERGY.name:
                gpu = tuple(labels.get(k, "") for k in catalog.CONST_LABELS) + (labels.get("gpu", ""),)
                for t, v in by_time.items():
                    gpu_energy[gpu][t] += v
            elif metric == catalog.INFERENCE_ENGINE_GPUS.name:
                for t, v in by_time.items():
                    if v > 0:
                        mapping[_key(labels)][t].add(labels.get("gpu", ""))
            elif metric == catalog.INFERENCE_TOKENS.name and labels.get("phase") in catalog.PHASES:
                for t, v in by_time.items():
                    tokens[(_key(labels), labels["phase"])][t] += v
            elif (metric == catalog.INFERENCE_PROMPT_TOKENS.name
                  and labels.get("source") == catalog.PROMPT_SOURCE_CACHED):
                for t, v in by_time.items():
                    cached[_key(labels)][t] += v
            elif (metric == catalog.INFERENCE_PHASE_ENERGY.name
                  and labels.get("method") != catalog.PHASE_METHOD_TOKEN_FIT):
                measured.add(_key(labels))
        energy: list[dict[str, Any]] = []
        for key, gpus_at in mapping.items():
            points = []
            for t, gpus in sorted(gpus_at.items()):
                parts = [gpu_energy.get(key[:len(catalog.CONST_LABELS)] + (g,), {}).get(t) for g in sorted(gpus)]
                if parts and all(p is not None for p in parts):
                    points.append([t, repr(sum(p for p in parts if p is not None))])
            energy.append({"metric": dict(zip(ENGINE_KEY, key, strict=True)), "values": points})
        q = interval_queries()
        return {
            q["energy"]: energy,
            q["tokens"]: [{"metric": {**dict(zip(ENGINE_KEY, key, strict=True)), "phase": phase},
                           "values": [[t, repr(v)] for t, v in sorted(by_time.items())]}
                          for (key, phase), by_time in tokens.items()],
            q["cached"]: [{"metric": dict(zip(ENGINE_KEY, key, strict=True)),
                           "values": [[t, repr(v)] for t, v in sorted(by_time.items())]}
                          for key, by_time in cached.items()],
            q["measured"]: [{"metric": dict(zip(ENGINE_KEY, key, strict=True)), "values": [[0.0, "1"]]}
                            for key in sorted(measured)],
        }


def _unix(ts: Any) -> float:
    """A stored (naive UTC) timestamp as unix seconds."""
    return ts.replace(tzinfo=timezone.utc).timestamp() if isinstance(ts, datetime) else float(ts)
