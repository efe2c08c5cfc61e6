"""The aggregator's inference step: requests, attribution methods and the token fit, per window.

Runs after ``ingest`` has written a Prometheus window (its hourly energy and
per-phase tokens). It adds what the hourly windows do not carry:

* requests per engine, model and hour, and the ``method`` label(s) of each
  engine's measured phase energy, into ``stg_inference_engine_hourly``;
* for engines that only count tokens (vLLM, SGLang: no phase energy series),
  the NNLS token fit of :mod:`.phase_estimator` over the whole window: one
  summary row per engine (estimate and quality, or why it declined) in
  ``inference_token_fit``, and the hourly per-phase split of the engine's
  measured GPU energy in ``stg_inference_hourly`` under the source
  ``<source>/token_fit`` with **tokens 0**: tokens are staged once, by the
  window, from the tokens counter. Engines with measured phase energy
  (phase_time, marked) are never fitted, so nothing is counted twice.

One transaction replaces the window's rows of all three tables and marks its
months dirty, so re-running a range gives the same rows and a crash leaves
the previous ones. The report's per-engine columns are derived from these rows
in ``aggregator/outputs/tables.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol, TypeGuard

import duckdb

from wattfleet.aggregator.inference.embedded_inputs import EmbeddedInferenceInputs
from wattfleet.aggregator.inference.phase_estimator import (
    ENGINE_KEY,
    Declined,
    EstimatorLimits,
    TokenFit,
    fit_summary,
    interval_queries,
    token_fit,
)
from wattfleet.aggregator.ingest.prometheus import inference_engine_queries
from wattfleet.aggregator.store.database import sql_text
from wattfleet.core import catalog

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
DEFAULT_CONTEXT_HOURS = 24  # the fit reads at least this much history (see run_inference_step)
DEFAULT_STEP_SECONDS = 120.0  # several samples per step at 15-60 s scrapes; divides an hour
FIT_SOURCE_SUFFIX = "/token_fit"
DEFAULT_LIMITS = EstimatorLimits()  # frozen, so one instance can be every call's default


class RangeQuerySource(Protocol):
    """What this step needs from a telemetry source (PrometheusSource has both)."""

    name: str
    page_hours: int

    def query_range(self, expr: str, first_end: datetime, last_end: datetime) -> list[dict[str, Any]]: ...

    def query_range_step(self, expr: str, start: datetime, end: datetime, step_seconds: float
                         ) -> list[dict[str, Any]]: ...


@dataclass
class InferenceFitResult:
    engine_rows: int = 0
    fit_rows: int = 0
    summaries: list[dict[str, Any]] = field(default_factory=list)


def supports(source: object) -> TypeGuard[RangeQuerySource]:
    """A PromQL source: asked for arbitrary steps (the embedded store answers through embedded_inputs)."""
    return callable(getattr(source, "query_range_step", None)) and callable(getattr(source, "query_range", None))


def is_embedded(source: object) -> bool:
    """An embedded-mode source (raw samples in DuckDB): its inputs come from ``emb_sample``."""
    return isinstance(getattr(source, "con", None), duckdb.DuckDBPyConnection) and not supports(source)


def _naive(ts: float) -> datetime:
    return datetime.fromtimestamp(round(float(ts)), tz=timezone.utc).replace(tzinfo=None)


def attribution_text(labels: dict[str, str]) -> str:
    """One ``inference_phase_attribution_info`` series as the report shows it.

    ``token_fit`` alone for a fitted engine; for phase time, its assumption and
    whether chunked prefill is on: ``phase_time: mixed_forward_as_prefill
    (chunked prefill true)`` says prefill energy includes the decode work that
    rode along in prefill forwards (TGI chunked prefill, SGLang mixed chunks).
    """
    method, assumption = labels.get("method", ""), labels.get("assumption", "")
    if not assumption or assumption == method:
        return method
    return f"{method}: {assumption} (chunked prefill {labels.get('chunked_prefill') or 'unknown'})"


def _engine_hourly(source: RangeQuerySource, start: datetime, end: datetime
                   ) -> dict[tuple[Any, ...], list[Any]]:
    """(hour, node, cluster, site, engine, model) -> [methods set, requests, attributions set], page by page."""
    out: dict[tuple[Any, ...], list[Any]] = {}
    queries = inference_engine_queries()
    page = start
    while page < end:
        page_end = min(end, page + source.page_hours * HOUR)
        for name, expr in queries.items():
            for series in source.query_range(expr, page + HOUR, page_end):
                m = series["metric"]
                for ts, value in series["values"]:
                    key = (_naive(ts) - HOUR, m.get("node", ""), m.get("cluster", ""), m.get("site", ""),
                           m.get("engine", ""), m.get("model", ""))
                    slot = out.setdefault(key, [set(), 0.0, set()])
                    v = float(value)
                    v = v if v == v else 0.0
                    if name == "requests":
                        slot[1] += max(v, 0.0)
                    elif name == "attribution":
                        if v > 0:
                            slot[2].add(attribution_text(m))
                    elif m.get("method") and m["method"] != catalog.PHASE_METHOD_TOKEN_FIT:
                        slot[0].add(m["method"])
        page = page_end
    return out


def _unfittable(answers: dict[str, list[dict[str, Any]]], summaries: list[dict[str, Any]]
                ) -> list[dict[str, Any]]:
    """Declined rows for engines that count tokens but could not even be paired into intervals.

    No GPU energy joined (no ``inference_engine_gpu`` mapping, or its GPUs'
    energy missing) or one phase's token counter absent: without this row the
    engine would silently have no phase energy and no reason in the report.
    """
    q = interval_queries()

    def keys(expr: str) -> set[tuple[str, ...]]:
        return {tuple(s["metric"].get(label, "") for label in ENGINE_KEY)
                for s in answers.get(expr, []) if s.get("values")}

    done = {tuple(s[label] for label in ENGINE_KEY) for s in summaries}
    energy = keys(q["energy"])
    out = []
    for key in sorted(keys(q["tokens"]) - done - keys(q["measured"])):
        reason = ("no GPU energy for the engine: is its GPU mapping (inference_engine_gpu) exported?"
                  if key not in energy else "a phase's token counter is missing: prefill and decode are both needed")
        out.append(fit_summary(key, Declined(reason, 0)))
    return out


def run_inference_step(con: duckdb.DuckDBPyConnection, source: Any, start: datetime,
                       end: datetime, *, step_seconds: float = DEFAULT_STEP_SECONDS,
                       limits: EstimatorLimits = DEFAULT_LIMITS, context_hours: int = DEFAULT_CONTEXT_HOURS,
                       now: datetime | None = None) -> InferenceFitResult:
    """Stage requests/methods and the token fit for whole hours [start, end) (naive UTC) of ``source``.

    The fit reads at least ``context_hours`` before ``end`` (more when the
    range is longer): an hourly run re-reads only a few hours, too few for a
    stable estimate, and must not replace a good split with a declined one
    for want of data. Only the hours [start, end) are written. An embedded
    source's inputs come from its raw samples (:mod:`.embedded_inputs`).
    """
    if step_seconds <= 0 or 3600 % step_seconds:
        raise ValueError(f"token fit step must divide an hour, got {step_seconds} s")
    result = InferenceFitResult()
    if end <= start:
        return result
    fit_start = min(start, end - context_hours * HOUR)
    answers: dict[str, list[dict[str, Any]]] = {}
    step_query: Callable[[str, datetime, datetime, float], Sequence[Mapping[str, Any]]]
    if supports(source):
        engines = _engine_hourly(source, start, end)
        step_query = source.query_range_step
    else:
        inputs = EmbeddedInferenceInputs(source.con, source.name)
        engines = inputs.engine_hourly(start, end, attribution_text)
        step_query = inputs.fit_query

    energy_expr, asked = interval_queries()["energy"], {}
    if supports(source) and callable(getattr(source, "engine_nodes_matcher", None)):
        matcher = source.engine_nodes_matcher(fit_start, end)  # type: ignore[attr-defined]
        asked = {energy_expr: interval_queries(matcher)["energy"] if matcher is not None else None}

    def query(expr: str) -> list[dict[str, Any]]:
        narrowed = asked.get(expr, expr)
        answers[expr] = ([] if narrowed is None  # no node hosts an engine: nothing to join GPU energy with
                         else [dict(s) for s in step_query(narrowed, fit_start, end, step_seconds)])
        return answers[expr]

    fit: TokenFit = token_fit(query, limits)
    fit.summaries.extend(_unfittable(answers, fit.summaries))
    fit_source = source.name + FIT_SOURCE_SUFFIX
    fit_rows = []
    for r in fit.hourly:
        hour = _naive(r["hour_start"])
        if not start <= hour < end:
            continue
        fit_rows.append((hour, r["node"], r["cluster"], r["site"], r["engine"], r["model"], r["phase"],
                         r["energy_joules"], 0.0, fit_source))
        key = (hour, r["node"], r["cluster"], r["site"], r["engine"], r["model"])
        engines.setdefault(key, [set(), 0.0, set()])[0].add(catalog.PHASE_METHOD_TOKEN_FIT)
    fitted_at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    summary_rows = [(source.name, fit_start, end, s["node"], s["cluster"], s["site"], s["engine"], s["model"],
                     s["status"], s["reason"], s["idle_watts"], s["joules_per_prefill_token"],
                     s["joules_per_decode_token"], s["n_intervals"], s["r_squared"], s["residual_rms_joules"],
                     s["condition_number"], float(step_seconds), fitted_at, s["joules_per_cached_token"],
                     s["cached_term"]) for s in fit.summaries]
    engine_rows = [(*k, ",".join(sorted(v[0])) or None, v[1], source.name, "; ".join(sorted(v[2])) or None)
                   for k, v in sorted(engines.items())]
    window = {"source": source.name, "start": start, "end": end}
    fit_window = {"source": source.name, "start": fit_start, "end": end}
    con.begin()
    try:
        con.execute(sql_text("staging/inference_fit.sql#delete_engine_hourly"), window)
        con.execute(sql_text("staging/inference_fit.sql#delete_phase_energy"),
                    {"fit_source": fit_source, "start": start, "end": end})
        con.execute(sql_text("staging/inference_fit.sql#delete_summaries"), fit_window)
        for name, rows in (("staging/inference_fit.sql#insert_engine_hourly", engine_rows),
                           ("staging/inference_fit.sql#insert_phase_energy", fit_rows),
                           ("staging/inference_fit.sql#insert_summary", summary_rows)):
            if rows:
                con.executemany(sql_text(name), rows)
        m = date(start.year, start.month, 1)
        while datetime(m.year, m.month, 1) < end:
            con.execute(sql_text("staging/inference_fit.sql#mark_dirty"), {"month": m})
            m = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
        con.commit()
    except Exception:
        con.rollback()
        raise
    for s in fit.summaries:
        name = "/".join(str(s[k]) for k in ENGINE_KEY)
        if s["status"] == "fitted":
            log.info("token fit %s: %.4g J/prefill token, %.4g J/decode token, idle %.4g W, R2 %.4f (%d intervals); "
                     "cached tokens: %s", name, s["joules_per_prefill_token"], s["joules_per_decode_token"],
                     s["idle_watts"], s["r_squared"], s["n_intervals"], s["cached_term"])
        else:
            log.warning("token fit %s declined: %s", name, s["reason"])
    result.engine_rows, result.fit_rows, result.summaries = len(engine_rows), len(fit_rows), fit.summaries
    return result
