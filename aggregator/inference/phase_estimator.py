"""Per-phase joules per token for engines that count tokens but not phase time (vLLM, SGLang).

Model, over many intervals i of one engine's GPUs::

    energy_i = idle_W x seconds_i + a x prefill_tokens_i + b x decode_tokens_i [+ c x cached_tokens_i]

``prefill_tokens`` are the prompt tokens the engine computed (all prompt tokens
where it does not split them); ``cached_tokens`` (prefix-cache hits) enter as
their own term when the engine reports them and the data can tell them from
computed tokens, and are left out otherwise (the choice and its evidence:
docs/accounting.md, bench/results/token_fit_prompt_terms.md). Their energy
``c x cached`` is prefill energy: it is what the computed tokens' attention
over the cached prefix costs.

fitted by non-negative least squares (no coefficient below 0: a negative
J/token is physically meaningless and would only absorb noise). Three
unknowns, so NNLS is solved exactly by enumerating the 2^3 sets of free
coefficients: the constrained optimum is the unconstrained least-squares
solution on one of them (its free coefficients positive), and we keep the
best such candidate. The regression is done on columns scaled to unit norm so
that seconds (tens) and tokens (tens of thousands) do not ruin the numerics.

An estimate is only returned when the data can support one; otherwise a
:class:`Declined` names the reason. Declined when: too few intervals; one
phase (almost) never active; prefill and decode tokens collinear (a steady
mix cannot tell a from b: condition number of the scaled design above the
limit); a phase coefficient pinned at 0 by the constraint; or a coefficient's
standard error too large relative to its value.

For the aggregator: :func:`token_fit` runs the fit for every engine and model
in a window read from Prometheus and returns one summary row each (estimate
and fit quality, or the reason it declined) and hourly per-phase energy rows
with ``method="token_fit"``, ready for the same tables as measured phase energy.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wattfleet.core import catalog

TERMS = ("idle_watts", "joules_per_prefill_token", "joules_per_decode_token")
CACHED_TERM = "joules_per_cached_token"
# What the fit did with cached prompt tokens (PhaseEstimate.cached_term, the fit summary's cached_term).
CACHED_FITTED = "fitted"
CACHED_NONE = "no cached tokens"
CACHED_LEFT_OUT = "left out"


@dataclass(frozen=True)
class Interval:
    """One interval of one engine: its GPUs' energy, its length and the tokens it processed."""

    seconds: float
    prefill_tokens: float
    decode_tokens: float
    joules: float
    end: float | None = None  # unix time the interval ends (from Prometheus), for splitting by hour
    cached_tokens: float = 0.0  # prompt tokens served from the prefix cache (not in prefill_tokens)


@dataclass(frozen=True)
class FitQuality:
    n_intervals: int
    r_squared: float
    residual_rms_joules: float
    condition_number: float
    relative_standard_errors: dict[str, float]


@dataclass(frozen=True)
class PhaseEstimate:
    idle_watts: float
    joules_per_prefill_token: float
    joules_per_decode_token: float
    quality: FitQuality
    method: str = catalog.PHASE_METHOD_TOKEN_FIT
    joules_per_cached_token: float = 0.0
    cached_term: str = CACHED_NONE  # CACHED_FITTED, CACHED_NONE, or CACHED_LEFT_OUT + ": <why>"

    def predict(self, seconds: float, prefill_tokens: float, decode_tokens: float, cached_tokens: float = 0.0
                ) -> float:
        return (self.idle_watts * seconds + self.joules_per_prefill_token * prefill_tokens
                + self.joules_per_decode_token * decode_tokens + self.joules_per_cached_token * cached_tokens)


@dataclass(frozen=True)
class Declined:
    """No estimate: the data cannot support one. ``reason`` says why, in words an operator can act on."""

    reason: str
    n_intervals: int
    quality: FitQuality | None = None


class EstimateDeclined(ValueError):
    def __init__(self, declined: Declined) -> None:
        self.declined = declined
        super().__init__(declined.reason)


@dataclass(frozen=True)
class EstimatorLimits:
    min_intervals: int = 12
    min_active_intervals: int = 3          # intervals in which a phase processed any token
    max_condition_number: float = 100.0    # of the unit-norm-column design; an independent mix is ~5
    max_relative_standard_error: float = 0.1


def nnls3(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares for a few columns by enumerating which coefficients are free.

    Columns are solved scaled by the power of two nearest their inverse norm: exact in floating
    point, a no-op for unit-norm columns (the fit's own scaling), and it keeps ``lstsq`` from
    discarding a column that is merely tiny (1e-58) next to the others as rank deficiency.
    """
    n_cols = x.shape[1]
    norms = np.linalg.norm(x, axis=0)
    scale = np.where(norms > 0, np.exp2(-np.round(np.log2(np.where(norms > 0, norms, 1.0)))), 1.0)
    best: np.ndarray | None = None
    best_rss = math.inf
    for size in range(n_cols, -1, -1):
        for free in itertools.combinations(range(n_cols), size):
            coef = np.zeros(n_cols)
            if free:
                sub = x[:, free] * scale[list(free)]
                sol, *_ = np.linalg.lstsq(sub, y, rcond=None)
                if np.any(sol < 0):
                    continue
                coef[list(free)] = sol * scale[list(free)]
            rss = float(np.sum((y - x @ coef) ** 2))
            if best is None or rss < best_rss * (1 - 1e-12):  # ties go to the larger free set
                best, best_rss = coef, rss
    assert best is not None  # the empty set (all zero) is always feasible
    return best


def _active(values: Iterable[float]) -> int:
    return sum(1 for v in values if v > 0)


def fit_phase_energy(intervals: Sequence[Interval], limits: EstimatorLimits = EstimatorLimits()
                     ) -> PhaseEstimate | Declined:
    """Fit the model above; a :class:`Declined` (never an exception) when the data cannot support it.

    With cached tokens, the four-term fit comes first; when it declines (mostly: a steady cache hit rate
    makes cached tokens move with computed ones, so the design cannot tell them apart) the three-term fit
    without them is used, and ``cached_term`` says so and why. Cached tokens' own standard error is no
    reason to decline: their energy is prefill energy either way, and the prefill total is what is
    reported (the split between ``a`` and ``c`` of a collinear pair is uncertain, their sum is not).
    """
    if not any(iv.cached_tokens > 0 for iv in intervals):
        return _fit(intervals, limits, with_cached=False)
    with_cached = _fit(intervals, limits, with_cached=True)
    if isinstance(with_cached, PhaseEstimate):
        return with_cached
    without = _fit(intervals, limits, with_cached=False)
    if isinstance(without, PhaseEstimate):
        return dataclasses.replace(without, cached_term=f"{CACHED_LEFT_OUT}: {with_cached.reason}")
    return without


def _fit(intervals: Sequence[Interval], limits: EstimatorLimits, *, with_cached: bool) -> PhaseEstimate | Declined:
    """One NNLS fit, with or without the cached-token column, and its acceptance checks."""
    terms = TERMS + ((CACHED_TERM,) if with_cached else ())
    n = len(intervals)
    if n < limits.min_intervals:
        return Declined(f"too few intervals: {n} < {limits.min_intervals}", n)
    bad = [i for i, iv in enumerate(intervals)
           if not all(math.isfinite(v) and v >= 0
                      for v in (iv.seconds, iv.prefill_tokens, iv.decode_tokens, iv.joules, iv.cached_tokens))]
    if bad:
        return Declined(f"intervals {bad[:5]} have negative or non-finite values", n)
    for name, values in (("prefill", [iv.prefill_tokens for iv in intervals]),
                         ("decode", [iv.decode_tokens for iv in intervals])):
        active = _active(values)
        if active < limits.min_active_intervals:
            return Declined(f"{name} active in only {active} of {n} intervals "
                            f"(need {limits.min_active_intervals}): its cost cannot be separated", n)
    x = np.array([[iv.seconds, iv.prefill_tokens, iv.decode_tokens] + ([iv.cached_tokens] if with_cached else [])
                  for iv in intervals], dtype=float)
    y = np.array([iv.joules for iv in intervals], dtype=float)
    norms = np.linalg.norm(x, axis=0)
    if np.any(norms == 0):
        return Declined("a column of the design is all zero (no time or no tokens)", n)
    xs = x / norms
    singular = np.linalg.svd(xs, compute_uv=False)
    condition = float(singular[0] / singular[-1]) if singular[-1] > 0 else math.inf
    coef_scaled = nnls3(xs, y)
    coef = coef_scaled / norms
    residual = y - x @ coef
    rss = float(residual @ residual)
    tss = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - rss / tss if tss > 0 else (1.0 if rss == 0 else 0.0)
    rms = math.sqrt(rss / n)
    rse = _relative_standard_errors(xs, coef_scaled, rss, n, terms)
    quality = FitQuality(n, r2, rms, condition, rse)
    if condition > limits.max_condition_number:
        what = ("prefill tokens, decode tokens, cached tokens and time" if with_cached
                else "prefill tokens, decode tokens and time")
        return Declined(f"{what} move together (condition number "
                        f"{condition:.3g} > {limits.max_condition_number:g}): a steady load or a fixed "
                        f"prompt/output mix cannot separate the costs", n, quality)
    for i, name in ((1, "prefill"), (2, "decode")):
        if coef[i] <= 0:
            return Declined(f"the fit pins joules per {name} token at 0: the data show no {name} cost", n, quality)
    for term, value in rse.items():
        if term not in (TERMS[0], CACHED_TERM) and value > limits.max_relative_standard_error:
            return Declined(f"{term} too uncertain: standard error {value:.1%} of the value "
                            f"(limit {limits.max_relative_standard_error:.0%})", n, quality)
    if with_cached:
        return PhaseEstimate(float(coef[0]), float(coef[1]), float(coef[2]), quality,
                             joules_per_cached_token=float(coef[3]), cached_term=CACHED_FITTED)
    return PhaseEstimate(float(coef[0]), float(coef[1]), float(coef[2]), quality)


def _relative_standard_errors(xs: np.ndarray, coef: np.ndarray, rss: float, n: int,
                              terms: tuple[str, ...] = TERMS) -> dict[str, float]:
    """Standard error / value for each free (positive) coefficient, from the residual variance."""
    free = [i for i in range(len(coef)) if coef[i] > 0]
    out = {term: math.inf for term in terms}
    dof = n - len(free)
    if not free or dof <= 0:
        return out
    sigma2 = rss / dof
    try:
        cov = sigma2 * np.linalg.inv(xs[:, free].T @ xs[:, free])
    except np.linalg.LinAlgError:
        return out
    for k, i in enumerate(free):
        out[terms[i]] = float(math.sqrt(max(cov[k, k], 0.0)) / coef[i])
    return out


def estimate_phase_energy(intervals: Sequence[Interval], limits: EstimatorLimits = EstimatorLimits()) -> PhaseEstimate:
    """Like :func:`fit_phase_energy` but raises :class:`EstimateDeclined` instead of returning it."""
    result = fit_phase_energy(intervals, limits)
    if isinstance(result, Declined):
        raise EstimateDeclined(result)
    return result


def split_with_estimate(est: PhaseEstimate, interval: Interval) -> dict[str, float]:
    """An interval's measured energy split by the fitted terms (idle, prefill, decode).

    The fitted terms are scaled to the measured joules, so the split adds up to
    the measurement exactly: the model decides the shares, never the total.
    Cached prompt tokens' term is prefill energy.
    """
    terms = {catalog.PHASE_IDLE: est.idle_watts * interval.seconds,
             "prefill": (est.joules_per_prefill_token * interval.prefill_tokens
                         + est.joules_per_cached_token * interval.cached_tokens),
             "decode": est.joules_per_decode_token * interval.decode_tokens}
    total = sum(terms.values())
    if total <= 0:
        return {k: (interval.joules if k == catalog.PHASE_IDLE else 0.0) for k in terms}
    return {k: interval.joules * v / total for k, v in terms.items()}


# --- intervals from Prometheus ------------------------------------------------------------------

ENGINE_KEY: tuple[str, ...] = catalog.CONST_LABELS + ("engine", "model")


def interval_queries(gpu_matcher: str = "") -> dict[str, str]:
    """Instant-vector PromQL (for query_range) of cumulative engine GPU energy and tokens by phase.

    Raw counter values at each step, not ``increase()``: consecutive values
    differ by exactly what the exporter counted, with no extrapolation at the
    window edges, and energy and tokens come from the same exporter snapshot.
    The engine's GPUs come from its ``inference_engine_gpu`` info series; the
    join adds the engine's ``model`` (the LLM) to the GPU's series (whose board is ``gpu_model``).
    ``cached``: prefix-cache hits, from engines that split their prompt tokens (the
    ``prefill`` phase's tokens are then the computed ones). ``gpu_matcher``
    (e.g. ``node=~"a|b"``) narrows the GPU energy selector to the nodes that
    host an engine: the store evaluates both sides of the join in full, and a
    whole fleet's GPU counters at the fit's step is more than it will load.
    """
    by = ", ".join(ENGINE_KEY)
    gpu = ", ".join(catalog.CONST_LABELS + ("gpu",))
    energy = f"{catalog.GPU_ENERGY.series}{{{gpu_matcher}}}" if gpu_matcher else catalog.GPU_ENERGY.series
    # ``max by`` the labels that tell series apart, before anything is summed or joined: an HA pair
    # (or a store fed by both) holds every series twice, differing only in a replica label, and the
    # copies must collapse into one (as in aggregator/ingest/prometheus.py), not add up.
    return {
        "energy": f"sum by ({by}) (max by ({gpu}) ({energy}) * on({gpu}) "
                  f"group_left(engine, model) max by ({gpu}, engine, model) ({catalog.INFERENCE_ENGINE_GPUS.series}))",
        "tokens": f"max by ({by}, phase) ({catalog.INFERENCE_TOKENS.series})",
        "cached": f'max by ({by}) ({catalog.INFERENCE_PROMPT_TOKENS.series}'
                  f'{{source="{catalog.PROMPT_SOURCE_CACHED}"}})',
        # Engines whose phase energy is measured (phase_time, marked): never fitted on top.
        "measured": f'group by ({by}) ({catalog.INFERENCE_PHASE_ENERGY.series}'
                    f'{{method!="{catalog.PHASE_METHOD_TOKEN_FIT}"}})',
    }


Matrix = Sequence[Mapping[str, Any]]  # Prometheus query_range result: [{"metric": {...}, "values": [[t, "v"], ...]}]


def intervals_from_matrix(energy: Matrix, tokens: Matrix, cached: Matrix = ()
                          ) -> dict[tuple[str, ...], list[Interval]]:
    """Pair consecutive steps into intervals per engine and model.

    A step missing any of the three series (four for an engine that reports
    cached tokens), or where any of them decreased (the exporter restarted),
    is not an interval: dropped, never guessed.
    """
    def key(metric: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(metric.get(label, "") for label in ENGINE_KEY)

    cum: dict[tuple[str, ...], dict[str, dict[float, float]]] = {}
    for series in energy:
        cum.setdefault(key(series["metric"]), {})["energy"] = {float(t): float(v) for t, v in series["values"]}
    for series in tokens:
        phase = series["metric"].get("phase", "")
        if phase in catalog.PHASES:
            cum.setdefault(key(series["metric"]), {})[phase] = {float(t): float(v) for t, v in series["values"]}
    for series in cached:
        k = key(series["metric"])
        if k in cum:
            cum[k]["cached"] = {float(t): float(v) for t, v in series["values"]}
    out: dict[tuple[str, ...], list[Interval]] = {}
    for k, parts in cum.items():
        if set(parts) - {"cached"} != {"energy", *catalog.PHASES}:
            continue
        steps = sorted(set.intersection(*(set(v) for v in parts.values())))
        intervals = []
        for t0, t1 in itertools.pairwise(steps):
            d = {name: values[t1] - values[t0] for name, values in parts.items()}
            if all(v >= 0 and math.isfinite(v) for v in d.values()):
                intervals.append(Interval(t1 - t0, d["prefill"], d["decode"], d["energy"], t1, d.get("cached", 0.0)))
        out[k] = intervals
    return out


def fit_from_prometheus(query_range: Callable[[str], Matrix], limits: EstimatorLimits = EstimatorLimits()
                        ) -> dict[tuple[str, ...], PhaseEstimate | Declined]:
    """One fit per (cluster, site, node, engine, model); ``query_range(expr)`` runs a range query.

    The caller binds start, end and step (a few minutes suits 15-60 s scrapes;
    each step is one interval of the regression).
    """
    q = interval_queries()
    pairs = intervals_from_matrix(query_range(q["energy"]), query_range(q["tokens"]), query_range(q["cached"]))
    return {k: fit_phase_energy(v, limits) for k, v in sorted(pairs.items())}


# --- results for the aggregator's report and rollups ---------------------------------------------

HOUR_SECONDS = 3600.0


def hourly_phase_energy(intervals: Sequence[Interval], est: PhaseEstimate
                        ) -> dict[float, dict[str, tuple[float, float]]]:
    """Unix hour start -> phase (prefill, decode, idle) -> (joules, tokens), from the measured energy.

    Each interval's measured joules are split by the fitted terms
    (:func:`split_with_estimate`) and land in the hour its end falls in
    (intervals are one query step, at most an hour). Summed over the hours the
    joules equal the measured energy: the fit only decides the shares.
    """
    out: dict[float, dict[str, tuple[float, float]]] = {}
    for iv in intervals:
        if iv.end is None:
            raise ValueError("interval without an end time: build intervals with intervals_from_matrix")
        # a step ending at 10:00 belongs to 9:00 (ceil, not floor(end - eps): at unix times ~1.8e9 an epsilon
        # below 2e-7 s vanishes in float rounding and the hour's last step landed in the next hour)
        hour = (math.ceil(iv.end / HOUR_SECONDS) - 1) * HOUR_SECONDS
        tokens = {"prefill": iv.prefill_tokens, "decode": iv.decode_tokens, catalog.PHASE_IDLE: 0.0}
        slot = out.setdefault(hour, {})
        for phase, joules in split_with_estimate(est, iv).items():
            j0, t0 = slot.get(phase, (0.0, 0.0))
            slot[phase] = (j0 + joules, t0 + tokens[phase])
    return out


def fit_summary(key: tuple[str, ...], result: PhaseEstimate | Declined) -> dict[str, Any]:
    """One report row per engine and model: the estimate and its quality, or why there is none.

    Columns: the :data:`ENGINE_KEY` labels, ``status`` (fitted | declined),
    ``reason``, ``method``, ``idle_watts``, ``joules_per_prefill_token``,
    ``joules_per_decode_token``, ``n_intervals``, ``r_squared``,
    ``residual_rms_joules``, ``condition_number`` (None where not computed),
    ``joules_per_cached_token`` and ``cached_term`` (what the fit did with cached
    prompt tokens: fitted, no cached tokens, or left out and why).
    """
    row: dict[str, Any] = dict(zip(ENGINE_KEY, key, strict=True))
    quality = result.quality
    row.update(status="fitted" if isinstance(result, PhaseEstimate) else "declined",
               reason=result.reason if isinstance(result, Declined) else "",
               method=catalog.PHASE_METHOD_TOKEN_FIT,
               idle_watts=getattr(result, "idle_watts", None),
               joules_per_prefill_token=getattr(result, "joules_per_prefill_token", None),
               joules_per_decode_token=getattr(result, "joules_per_decode_token", None),
               n_intervals=quality.n_intervals if quality else result.n_intervals,  # type: ignore[union-attr]
               r_squared=quality.r_squared if quality else None,
               residual_rms_joules=quality.residual_rms_joules if quality else None,
               condition_number=quality.condition_number if quality else None,
               joules_per_cached_token=getattr(result, "joules_per_cached_token", None),
               cached_term=getattr(result, "cached_term", None))
    return row


@dataclass(frozen=True)
class TokenFit:
    """What the aggregator stores from one fitting run over a window."""

    summaries: list[dict[str, Any]]   # one per engine and model: fit_summary()
    hourly: list[dict[str, Any]]      # ENGINE_KEY labels, hour_start (unix), phase, energy_joules, tokens, method


def token_fit(query_range: Callable[[str], Matrix], limits: EstimatorLimits = EstimatorLimits(),
              skip: Callable[[tuple[str, ...]], bool] = lambda key: False) -> TokenFit:
    """Fit every engine and model in the window and split its GPU energy by phase, hour by hour.

    ``query_range(expr)`` runs a range query with the caller's start, end and
    step (1-5 minutes gives the regression enough intervals; the step must
    divide an hour). Engines that already have measured phase energy
    (``method`` phase_time or marked, the ``measured`` query) are left out:
    those are better than any fit and must not be counted twice; ``skip(key)``
    leaves out more. Declined engines get a summary row and no hourly rows.
    """
    q = interval_queries()
    pairs = intervals_from_matrix(query_range(q["energy"]), query_range(q["tokens"]), query_range(q["cached"]))
    measured = {tuple(series["metric"].get(label, "") for label in ENGINE_KEY)
                for series in query_range(q["measured"]) if series.get("values")}
    summaries, hourly = [], []
    for key, intervals in sorted(pairs.items()):
        if key in measured or skip(key):
            continue
        result = fit_phase_energy(intervals, limits)
        summaries.append(fit_summary(key, result))
        if isinstance(result, Declined):
            continue
        for hour, phases in sorted(hourly_phase_energy(intervals, result).items()):
            for phase, (joules, tokens) in phases.items():
                hourly.append({**dict(zip(ENGINE_KEY, key, strict=True)), "hour_start": hour, "phase": phase,
                               "energy_joules": joules, "tokens": tokens,
                               "method": catalog.PHASE_METHOD_TOKEN_FIT})
    return TokenFit(summaries, hourly)
