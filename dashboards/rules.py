"""Prometheus recording and alerting rules, as YAML-ready dicts.

Recording rules hold the costly joins (IT power x PUE x grid intensity, on
site then zone) so dashboards and alerts read one cheap series. Names follow
Prometheus' ``level:metric:operations`` convention. Thresholds that differ
between fleets are :class:`RuleConfig` fields (and ``dashboards build`` flags).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wattfleet.core import catalog
from wattfleet.dashboards import promql as q

NODE = ("cluster", "site", "node")
GPU = NODE + catalog.GPU_LABELS
ENGINE = NODE + ("engine", "model")

# --- recording rule names (dashboards import these) -------------------------
NODE_IT_POWER = "node:wattfleet_it_power_watts:sum"
NODE_FACILITY_POWER = "node:wattfleet_facility_power_watts:sum"
NODE_CARBON_RATE = "node:wattfleet_carbon_grams_per_second:sum"
NODE_WATER_RATE = "node:wattfleet_water_liters_per_second:sum"
GPU_POWER_RATE = "node_gpu:wattfleet_gpu_energy_joules:rate"
GPU_CARBON_RATE = "node_gpu:wattfleet_carbon_grams_per_second:sum"
SITE_IT_POWER = "site:wattfleet_it_power_watts:sum"
SITE_FACILITY_POWER = "site:wattfleet_facility_power_watts:sum"
SITE_CARBON_RATE = "site:wattfleet_carbon_grams_per_second:sum"
SITE_WATER_RATE = "site:wattfleet_water_liters_per_second:sum"
INFERENCE_CARBON_RATE = "node_engine_model:wattfleet_inference_carbon_grams_per_second:sum"
# Prompt tokens per second by source (computed, cached, transferred, unsplit): summable per engine, so
# dashboards take the cache hit ratio and J per computed prefill token as ratios of sums, never of ratios.
INFERENCE_PROMPT_RATE = "node_engine_model:wattfleet_inference_prompt_tokens:rate"
BUDGET_BURN_RATE = "scope_owner_period:wattfleet_carbon_budget_burn_rate:ratio"
# Energy by workload (issue 17): watts per node, component, pod and share (container summed: GPU series are per
# container, CPU/DRAM per pod); namespaces' watts and location-based carbon across nodes.
NODE_WORKLOAD_POWER = "node_namespace_pod:wattfleet_workload_power_watts:sum"
NAMESPACE_POWER = "namespace:wattfleet_workload_power_watts:sum"
NAMESPACE_CARBON_RATE = "namespace:wattfleet_carbon_grams_per_second:sum"
WORKLOAD = NODE + ("component", "namespace", "pod", "workload", "share")


@dataclass(frozen=True)
class RuleConfig:
    """Fleet-specific thresholds; the defaults suit a GPU fleet scraped every 15-30 s."""

    # Window of the recording rules' rate(): at least 4 scrape intervals.
    rate_window: str = "1m"
    job_regex: str = ".*wattfleet.*"
    exporter_down_for: str = "5m"
    collector_failing_for: str = "10m"
    snapshot_stale_seconds: int = 120
    snapshot_stale_for: str = "2m"
    collector_timeout_window: str = "5m"
    collector_timeout_for: str = "2m"
    inference_rejected_window: str = "15m"
    inference_rejected_for: str = "5m"
    reset_window: str = "15m"
    reset_storm_count: int = 3
    idle_utilization_ratio: float = 0.05
    idle_power_watts: float = 100.0
    idle_for: str = "1h"
    intensity_stale_seconds: int = 3 * 3600
    watermark_stale_seconds: int = 6 * 3600
    # An ingest run kept a stored hour (the store answered less than was stored) within this long: the alert
    # stays up this long after the last keep (a batch run every hour re-keeps it while the fault lasts).
    kept_recent_seconds: int = 3 * 3600
    burn_rate_window: str = "6h"
    burn_rate_target: float = 1.0
    burn_rate_for: str = "1h"
    unaccounted_for: str = "15m"
    # The kubelet's pod-resources API unanswered this long: GPU energy by pod uses an old mapping.
    mapping_stale_seconds: int = 300
    mapping_stale_for: str = "5m"
    # GPUs no pod holds drawing more than this per node, for this long: capacity burning power for nobody.
    unallocated_gpu_watts: float = 200.0
    unallocated_gpu_for: str = "2h"


def _rec(record: str, expr: str) -> dict[str, str]:
    return {"record": record, "expr": expr}


def recording_rules(cfg: RuleConfig = RuleConfig()) -> list[dict[str, Any]]:
    """Rule groups for the recording rules file."""
    window = cfg.rate_window
    gpu_rate = q.agg("sum", q.rate(q.selector(catalog.GPU_ENERGY), window), GPU)
    it_power = q.agg("sum", q.it_energy("rate", window), NODE)
    wue = q.agg("max", q.selector(catalog.SITE_WUE), ("site", "zone"))
    phase_energy = q.agg("sum", q.phase_energy("rate", window), ENGINE)
    node_rules = [
        _rec(GPU_POWER_RATE, gpu_rate),
        _rec(NODE_IT_POWER, it_power),
        _rec(NODE_FACILITY_POWER, q.with_pue(NODE_IT_POWER)),
        _rec(NODE_CARBON_RATE, q.with_intensity(NODE_FACILITY_POWER)),
        _rec(NODE_WATER_RATE, f"({NODE_IT_POWER}) * on(site) group_left(zone) {wue} / {q.JOULES_PER_KWH:g}"),
        _rec(GPU_CARBON_RATE, q.with_intensity(q.with_pue(GPU_POWER_RATE))),
        _rec(INFERENCE_CARBON_RATE, q.with_intensity(q.with_pue(phase_energy))),
        _rec(INFERENCE_PROMPT_RATE,
             q.agg("sum", q.rate(q.selector(catalog.INFERENCE_PROMPT_TOKENS), window), ENGINE + ("source",))),
    ]
    site_rules = [
        _rec(SITE_IT_POWER, q.agg("sum", NODE_IT_POWER, ("site",))),
        _rec(SITE_FACILITY_POWER, q.agg("sum", NODE_FACILITY_POWER, ("site", "zone"))),
        _rec(SITE_CARBON_RATE, q.agg("sum", NODE_CARBON_RATE, ("site", "zone"))),
        _rec(SITE_WATER_RATE, q.agg("sum", NODE_WATER_RATE, ("site", "zone"))),
    ]
    # SRE burn rate: grams per second now, over the rate the budget allows (budget / month).
    # A finished month's used figure stops growing, so its burn rate falls to 0 by itself.
    budget = [_rec(BUDGET_BURN_RATE,
                   f"deriv({q.selector(catalog.CARBON_BUDGET_USED)}[{cfg.burn_rate_window}]) "
                   f"* scalar(days_in_month()) * 86400 / on(scope_owner, period) "
                   f"{q.selector(catalog.CARBON_BUDGET)}")]
    workload_power = q.agg("sum", q.rate(q.selector(catalog.WORKLOAD_ENERGY), window), WORKLOAD)
    workloads = [
        _rec(NODE_WORKLOAD_POWER, workload_power),
        _rec(NAMESPACE_POWER, q.agg("sum", NODE_WORKLOAD_POWER, ("cluster", "site", "namespace", "share"))),
        _rec(NAMESPACE_CARBON_RATE, q.with_intensity(q.with_pue(q.agg(
            "sum", q.selector(NODE_WORKLOAD_POWER, eq={"share": catalog.SHARE_WORKLOAD}),
            ("cluster", "site", "namespace"))))),
    ]
    return [{"name": "wattfleet-node", "rules": node_rules},
            {"name": "wattfleet-site", "rules": site_rules},
            {"name": "wattfleet-budget", "rules": budget},
            {"name": "wattfleet-workload", "rules": workloads}]


def _alert(name: str, expr: str, duration: str, severity: str, summary: str,
           description: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if duration != "0s":
        rule["for"] = duration
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


def alerting_rules(cfg: RuleConfig = RuleConfig()) -> list[dict[str, Any]]:
    """Rule groups for the alerts file."""
    up = q.selector("up", regex={"job": cfg.job_regex})
    collector_up = q.selector(catalog.COLLECTOR_UP)
    collector_enabled = q.selector(catalog.COLLECTOR_ENABLED)
    resets = q.agg("sum", f"increase({q.selector(catalog.COUNTER_RESETS)}[{cfg.reset_window}])",
                   NODE + ("sensor",))
    power, util = q.selector(catalog.GPU_POWER), q.selector(catalog.GPU_UTILIZATION)
    timeouts = q.selector(catalog.COLLECTOR_ERRORS, eq={"reason": "timeout"})
    unallocated = q.selector(catalog.WORKLOAD_ENERGY, eq={"component": "gpu", "share": catalog.SHARE_UNALLOCATED})
    rules = [
        _alert("WattfleetExporterDown", f"{up} == 0", cfg.exporter_down_for, "warning",
               "wattfleet target {{ $labels.instance }} is down",
               "Prometheus cannot scrape {{ $labels.job }}/{{ $labels.instance }}; its energy is not counted."),
        _alert("WattfleetCollectorFailing",
               f"({collector_up} == 0) and on(cluster, site, node, collector, job, instance) "
               f"({collector_enabled} == 1)",
               cfg.collector_failing_for, "warning",
               "collector {{ $labels.collector }} failing on {{ $labels.node }}",
               "The {{ $labels.collector }} collector found its hardware at start but its samples fail; "
               f"see {catalog.COLLECTOR_ERRORS.series} for the reason."),
        _alert("WattfleetExporterSnapshotStale",
               f"time() - {q.selector(catalog.LAST_SAMPLE)} > {cfg.snapshot_stale_seconds}",
               cfg.snapshot_stale_for, "warning",
               "exporter on {{ $labels.node }} serves a snapshot {{ $value | humanizeDuration }} old",
               f"The exporter answers scrapes but its sampling loop has not published for more than "
               f"{cfg.snapshot_stale_seconds} s: its counters are frozen and its /-/ready fails."),
        _alert("WattfleetCollectorTimeout",
               f"increase({timeouts}[{cfg.collector_timeout_window}]) > 0",
               cfg.collector_timeout_for, "warning",
               "collector {{ $labels.collector }} on {{ $labels.node }} is not answering",
               "Samples of the {{ $labels.collector }} collector run past their deadline (a hung driver, such as "
               "a GPU falling off the bus): it is reported down with its counters held; the energy it misses is "
               f"added when it answers again ({catalog.ENERGY_RECOVERED.series})."),
        _alert("WattfleetInferenceSamplesRejected",
               f"sum by (cluster, site, node, engine, endpoint, reason) "
               f"(increase({q.selector(catalog.INFERENCE_REJECTED)}[{cfg.inference_rejected_window}])) > 0",
               cfg.inference_rejected_for, "warning",
               "engine {{ $labels.engine }} on {{ $labels.node }}: values rejected ({{ $labels.reason }})",
               "The exporter refuses values of this engine's metrics page that cannot be real (not finite, "
               "negative, faster than its GPUs allow, counters dipping, a load-balanced endpoint over several "
               "replicas): they are not counted, so its tokens or phase energy are short. For "
               "replicated_endpoint, list one engine entry per process (pod IP)."),
        _alert("WattfleetCounterResetStorm", f"{resets} > {cfg.reset_storm_count}", "0s", "warning",
               "energy counters on {{ $labels.node }} reset {{ $value }} times",
               f"More than {cfg.reset_storm_count} hardware energy counter resets in {cfg.reset_window} "
               "({{ $labels.sensor }}): driver reloads or a failing device; energy between resets is lost."),
        _alert("WattfleetGpuIdlePowerBurn",
               f"({power} > {cfg.idle_power_watts:g}) and on(cluster, site, node, gpu, uuid, gpu_model, job, instance) "
               f"({util} < {cfg.idle_utilization_ratio:g})",
               cfg.idle_for, "info",
               "GPU {{ $labels.gpu }} on {{ $labels.node }} draws {{ $value }} W while idle",
               f"Utilization below {cfg.idle_utilization_ratio:g} with more than {cfg.idle_power_watts:g} W "
               f"for {cfg.idle_for}: an allocated but unused GPU."),
        _alert("WattfleetGridIntensityStale",
               f"{q.selector(catalog.GRID_INTENSITY_AGE)} > {cfg.intensity_stale_seconds}", "10m", "warning",
               "grid intensity for zone {{ $labels.zone }} is stale",
               f"The newest intensity value is older than {cfg.intensity_stale_seconds} s; carbon figures "
               "use filled or old hours."),
        _alert("WattfleetCarbonNotAccounted",
               f"{NODE_IT_POWER} unless on(cluster, site, node) {NODE_CARBON_RATE}", cfg.unaccounted_for, "warning",
               "node {{ $labels.node }} draws power but has no carbon rate",
               "Its site {{ $labels.site }} has no PUE from `wattfleet serve` (the exporter's site label is not a "
               "site of the facility config) or its zone has no average grid intensity: the fleet's carbon "
               "figures leave this node out."),
        _alert("WattfleetAggregatorBehind",
               f"time() - {q.selector(catalog.AGGREGATOR_WATERMARK)} > {cfg.watermark_stale_seconds}", "10m",
               "warning", "wattfleet aggregator has not ingested a full hour recently",
               f"The aggregator watermark is more than {cfg.watermark_stale_seconds} s old; rollups are behind."),
        _alert("WattfleetAggregatorKeptStoredHours",
               f"time() - {q.selector(catalog.AGGREGATOR_LAST_KEPT)} < {cfg.kept_recent_seconds}", "0s", "warning",
               "wattfleet aggregator kept stored hours of {{ $labels.source }} ({{ $labels.mode }}): "
               "the store answered less than was stored",
               "{{ $value | humanizeDuration }} ago an ingest run did not replace a stored hour, because the store "
               "answered less for it than is stored (raw: a lookback re-read with fewer series, e.g. a Prometheus "
               "restarted without its WAL, a shard or replica down, retention; pre-aggregated: the hour's recorded "
               "series incomplete, i.e. the wattfleet-hourly-energy rule group lags or one of its rules fails). "
               "The stored energy was kept, so figures are not lost, but late samples of that hour are not taken "
               "in. Runbook: the run's log names each hour and its rows read and stored; "
               f"{catalog.AGGREGATOR_KEPT_WINDOWS.series} counts the keeps; table ingest_kept_hour in the "
               "aggregator's DuckDB holds hour, reason and counts. Check the store's health and retention, or "
               "the rule group's evaluation (/api/v1/rules, or backfill the rule: README, Pre-aggregation); once "
               "the store answers in full, `wattfleet aggregate --from HOUR --to HOUR+1h` takes the hour in. Expected "
               "once, right after switching a raw store to --pre-aggregated: the hours ingested raw within the "
               "lookback are kept (mode pre-aggregated), and the alert resolves by itself."),
        _alert("WattfleetCarbonBudgetBurnRate", f"{BUDGET_BURN_RATE} > {cfg.burn_rate_target:g}",
               cfg.burn_rate_for, "warning",
               "carbon budget of {{ $labels.scope_owner }} burning {{ $value | printf \"%.2f\" }}x too fast",
               f"Over the last {cfg.burn_rate_window}, emissions counted against the budget grew more than "
               f"{cfg.burn_rate_target:g}x as fast as the monthly budget allows: at this pace it is overrun."),
        _alert("WattfleetKubeletMappingStale",
               f"{q.selector(catalog.WORKLOAD_MAPPING_AGE)} > {cfg.mapping_stale_seconds}", cfg.mapping_stale_for,
               "warning", "GPU-to-pod mapping on {{ $labels.node }} is {{ $value | humanizeDuration }} old",
               "The kubelet's pod-resources API does not answer the exporter "
               f"({catalog.COLLECTOR_ERRORS.series}{{collector=\"workload\"}} says why): GPU energy by pod uses "
               "the last mapping, right while no pod starts or stops, and unallocated if there never was one."),
        _alert("WattfleetUnallocatedGpuPower",
               q.agg("sum", q.rate(unallocated, cfg.rate_window), NODE) + f" > {cfg.unallocated_gpu_watts:g}",
               cfg.unallocated_gpu_for, "info",
               "GPUs no pod holds on {{ $labels.node }} draw {{ $value }} W",
               f"For {cfg.unallocated_gpu_for} the node's unallocated GPUs drew more than "
               f"{cfg.unallocated_gpu_watts:g} W: energy charged to no team (scale the pool down, or power-cap idle "
               "boards)."),
    ]
    return [{"name": "wattfleet-alerts", "rules": rules}]


def recording_rule_names() -> list[str]:
    return [r["record"] for g in recording_rules() for r in g["rules"]]  # names do not depend on cfg


def alert_names(cfg: RuleConfig = RuleConfig()) -> list[str]:
    return [r["alert"] for g in alerting_rules(cfg) for r in g["rules"]]
