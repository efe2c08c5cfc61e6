"""Inference efficiency: tokens per second, joules per token by phase, carbon per 1k tokens, idle burn."""

from __future__ import annotations

from grafanalib import core as g

from wattfleet.core import catalog
from wattfleet.dashboards import promql as q
from wattfleet.dashboards import rules as r
from wattfleet.dashboards.base import dashboard
from wattfleet.dashboards.panels import (
    GRAMS,
    JOULE,
    PERCENT_UNIT,
    REQUESTS_PER_SECOND,
    SHORT,
    TOKENS_PER_SECOND,
    WATT,
    Layout,
    Query,
)

UID = "wattfleet-inference"
ENGINE = ("engine", "model")
IDLE_UTILIZATION = r.RuleConfig().idle_utilization_ratio


def _inf(metric: catalog.Metric, **eq: str) -> str:
    return q.selector(metric, eq=eq or None, regex=q.node_filters())


def _rate(metric: catalog.Metric, labels: tuple[str, ...], **eq: str) -> str:
    return q.agg("sum", q.rate(_inf(metric, **eq)), labels)


def _energy_rate(labels: tuple[str, ...], **eq: str) -> str:
    """Attributed phase energy (one method per engine) in watts."""
    return q.agg("sum", q.phase_energy("rate", q.RATE_INTERVAL, q.node_filters(), eq or None), labels)


def joules_per_token(phase: str) -> str:
    """Attributed phase energy over the phase's tokens, per engine and model."""
    labels = ENGINE + ("phase",)
    return (f"{_energy_rate(labels, phase=phase)} / "
            f"{_rate(catalog.INFERENCE_TOKENS, labels, phase=phase)}")


def grams_per_1k_tokens() -> str:
    carbon = q.agg("sum", q.selector(r.INFERENCE_CARBON_RATE, regex=q.node_filters()), ENGINE)
    return f"{carbon} / {_rate(catalog.INFERENCE_TOKENS, ENGINE)} * 1000"


def _prompt_rate(source_regex: str) -> str:
    """Prompt tokens per second of the given sources, per engine and model, over the panel's rate window (the
    window of the phase energy it is divided into: ratios of rates over different windows drift)."""
    return q.agg("sum", q.rate(q.selector(catalog.INFERENCE_PROMPT_TOKENS,
                                          regex={**q.node_filters(), "source": source_regex})), ENGINE)


SPLIT_SOURCES = "|".join((catalog.PROMPT_SOURCE_COMPUTED, catalog.PROMPT_SOURCE_CACHED,
                          catalog.PROMPT_SOURCE_TRANSFERRED))


def cache_hit_ratio() -> str:
    """Cached over all split prompt tokens, per engine and model; engines that do not split are absent."""
    return f"{_prompt_rate(catalog.PROMPT_SOURCE_CACHED)} / {_prompt_rate(SPLIT_SOURCES)}"


def joules_per_computed_prefill_token() -> str:
    """Attributed prefill energy over the prompt tokens the engine computed (engines that split them only)."""
    return f"{_energy_rate(ENGINE, phase='prefill')} / {_prompt_rate(catalog.PROMPT_SOURCE_COMPUTED)}"


def _idle_power() -> str:
    power = q.selector(catalog.GPU_POWER, regex=q.node_filters(gpu=True))
    util = q.selector(catalog.GPU_UTILIZATION, regex=q.node_filters(gpu=True))
    return f"({power}) and ({util} < {IDLE_UTILIZATION:g})"


def build() -> g.Dashboard:
    lay = Layout()
    lay.row("Efficiency")
    lay.stat("Joules per prefill token", JOULE, [Query(joules_per_token("prefill"), "{{engine}} {{model}}")],
             w=6, decimals=3)
    lay.stat("Joules per decode token", JOULE, [Query(joules_per_token("decode"), "{{engine}} {{model}}")],
             w=6, decimals=3)
    lay.stat("Grams CO2e per 1k tokens (location-based)", GRAMS,
             [Query(grams_per_1k_tokens(), "{{engine}} {{model}}")], w=6, decimals=3,
             description="Attributed GPU energy x PUE x hourly grid intensity, per thousand tokens.")
    lay.stat("Idle burn", WATT, [Query(f"sum({_idle_power()})")], w=6,
             description=f"Power drawn by GPUs below {IDLE_UTILIZATION:.0%} utilization.")
    lay.timeseries("Tokens per second by phase", TOKENS_PER_SECOND, [
        Query(_rate(catalog.INFERENCE_TOKENS, ENGINE + ("phase",)), "{{engine}} {{model}} {{phase}}")])
    lay.timeseries("Joules per token by phase", JOULE, [
        Query(joules_per_token(phase), "{{engine}} {{model}} {{phase}}") for phase in catalog.PHASES])
    lay.timeseries("Grams CO2e per 1k tokens", GRAMS, [Query(grams_per_1k_tokens(), "{{engine}} {{model}}")])
    lay.timeseries("Energy per request", JOULE, [Query(
        f"{_energy_rate(ENGINE)} / {_rate(catalog.INFERENCE_REQUESTS, ENGINE)}",
        "{{engine}} {{model}}")])

    lay.row("Prompt tokens and prefix cache")
    lay.stat("Joules per computed prefill token", JOULE,
             [Query(joules_per_computed_prefill_token(), "{{engine}} {{model}}")], w=6, decimals=3,
             description="Prefill energy over the prompt tokens the engine actually computed (prefix-cache hits "
                         "and transferred KV excluded). Engines that do not split their prompt tokens are not "
                         "shown: their joules per prefill token counts cache hits as prefill tokens.")
    lay.stat("Prefix-cache hit ratio", PERCENT_UNIT, [Query(cache_hit_ratio(), "{{engine}} {{model}}")], w=6,
             decimals=1, description="Cached prompt tokens over computed + cached + transferred ones, for engines "
                                     "that split their prompt tokens.")
    lay.timeseries("Prompt tokens per second by source", TOKENS_PER_SECOND, [Query(
        q.agg("sum", q.selector(r.INFERENCE_PROMPT_RATE, regex=q.node_filters()), ENGINE + ("source",)),
        "{{engine}} {{model}} {{source}}")], w=12,
        description="computed, cached (prefix-cache hit), transferred (KV from another instance); unsplit: the "
                    "engine does not say which.")

    lay.row("Load and idle burn")
    lay.timeseries("Requests per second", REQUESTS_PER_SECOND, [
        Query(_rate(catalog.INFERENCE_REQUESTS, ENGINE), "{{engine}} {{model}}")], w=8)
    lay.timeseries("Running and waiting requests", SHORT, [
        Query(q.agg("sum", _inf(catalog.INFERENCE_RUNNING), ENGINE), "{{engine}} {{model}} running"),
        Query(q.agg("sum", _inf(catalog.INFERENCE_WAITING), ENGINE), "{{engine}} {{model}} waiting")], w=8)
    lay.timeseries("KV-cache usage", PERCENT_UNIT, [
        Query(q.agg("max", _inf(catalog.INFERENCE_KV_CACHE), ("node",) + ENGINE), "{{node}} {{engine}} {{model}}")],
        w=8)
    lay.timeseries("Idle burn by GPU", WATT, [Query(
        q.agg("sum", _idle_power(), ("node", "gpu")), "{{node}} GPU {{gpu}}")], w=24,
        description="GPU power at low utilization: allocated but unused capacity.")
    return dashboard("wattfleet / Inference efficiency", UID, lay,
                     "Prefill and decode throughput, joules per token, carbon per 1k tokens and idle GPU burn.",
                     time_from="now-3h")
