"""The metric catalog: every series wattfleet publishes, with its unit and labels.

This module is the single source of truth. The exporter renders from it, the
aggregator builds its PromQL from it, the dashboards and rules are generated
from it, and tests fail when any of them names a metric that is not here.
Names follow Prometheus conventions: base units in the name (joules, watts,
seconds, bytes, celsius, hertz, grams, liters), ``_ratio`` for 0..1 values and
``_total`` on counters (added by :attr:`Metric.series`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "info"]
Component = Literal["exporter", "inference", "aggregator"]

PREFIX = "wattfleet"

# Constant labels the exporter adds to every series it publishes (configurable
# values, fixed names). The aggregator joins telemetry to sites through them.
CONST_LABELS: tuple[str, ...] = ("node", "cluster", "site")

# Values of the ``method`` label on energy series.
METHOD_MEASURED = "measured"
METHOD_ESTIMATED = "estimated"

# RAPL domains as named in the powercap tree (``name`` file), normalised:
# ``package-0`` -> ``package``. ``psys`` covers the whole SoC/platform and
# overlaps package and dram; consumers must not add psys to package + dram.
RAPL_DOMAINS: tuple[str, ...] = ("package", "core", "uncore", "dram", "psys")
# Domains that together make a node's CPU+memory energy without double counting.
RAPL_IT_DOMAINS: tuple[str, ...] = ("package", "dram")

PHASES: tuple[str, ...] = ("prefill", "decode")


@dataclass(frozen=True)
class Metric:
    """One metric family.

    ``name`` is the family name without ``_total``; ``series`` is what appears
    in the exposition and in PromQL. ``labels`` excludes :data:`CONST_LABELS`,
    which exporter-side metrics also carry (``const_labels=True``).
    """

    name: str
    kind: Kind
    unit: str
    help: str
    labels: tuple[str, ...] = ()
    component: Component = "exporter"
    const_labels: bool = True

    @property
    def series(self) -> str:
        """The sample name as scraped: counters carry ``_total``."""
        return f"{self.name}_total" if self.kind == "counter" else (
            f"{self.name}_info" if self.kind == "info" else self.name)

    @property
    def all_labels(self) -> tuple[str, ...]:
        return (CONST_LABELS + self.labels) if self.const_labels else self.labels


def _m(name: str, kind: Kind, unit: str, help: str, labels: tuple[str, ...] = (),
       component: Component = "exporter", const_labels: bool = True) -> Metric:
    return Metric(f"{PREFIX}_{name}", kind, unit, help, labels, component, const_labels)


GPU_LABELS = ("gpu", "uuid", "gpu_model")
CPU_LABELS = ("socket", "domain")
ENGINE_LABELS = ("engine", "model")

# --- exporter: GPUs (NVML) -------------------------------------------------
GPU_ENERGY = _m("gpu_energy_joules", "counter", "joules",
                "GPU energy since exporter start, corrected for driver counter resets.",
                GPU_LABELS + ("method", "source"))
GPU_POWER = _m("gpu_power_watts", "gauge", "watts", "GPU board power draw (NVML power usage).", GPU_LABELS)
GPU_POWER_LIMIT = _m("gpu_power_limit_watts", "gauge", "watts", "Enforced GPU power limit.", GPU_LABELS)
GPU_UTILIZATION = _m("gpu_utilization_ratio", "gauge", "ratio",
                     "Fraction of the last sample period a kernel was running.", GPU_LABELS)
GPU_MEMORY_UTILIZATION = _m("gpu_memory_utilization_ratio", "gauge", "ratio",
                            "Fraction of the last sample period device memory was read or written.", GPU_LABELS)
GPU_MEMORY_USED = _m("gpu_memory_used_bytes", "gauge", "bytes", "Device memory in use.", GPU_LABELS)
GPU_TEMPERATURE = _m("gpu_temperature_celsius", "gauge", "celsius", "GPU core temperature.", GPU_LABELS)
GPU_SM_CLOCK = _m("gpu_sm_clock_hertz", "gauge", "hertz", "Current SM clock.", GPU_LABELS)
GPU_MEMORY_CLOCK = _m("gpu_memory_clock_hertz", "gauge", "hertz", "Current memory clock.", GPU_LABELS)
GPU_UP = _m("gpu_up", "gauge", "", "1 when the GPU answered the last sample, 0 when it is lost or failing.", GPU_LABELS)
GPU_INFO = _m("gpu", "info", "", "Static GPU facts: driver, MIG mode.",
              GPU_LABELS + ("driver_version", "mig_mode"))
GPU_MIG_DEVICE = _m("gpu_mig_device", "info", "", "MIG instances NVML reports on a GPU.",
                    GPU_LABELS + ("mig_uuid", "gpu_instance", "compute_instance"))
GPU_MIG_MEMORY_USED = _m("gpu_mig_memory_used_bytes", "gauge", "bytes", "Memory in use per MIG instance.",
                         GPU_LABELS + ("mig_uuid",))

# --- exporter: CPU and DRAM (RAPL or estimated) ----------------------------
CPU_ENERGY = _m("cpu_energy_joules", "counter", "joules",
                "CPU-socket energy by RAPL domain (package, core, uncore, dram, psys) since exporter start, "
                "corrected for wraparound; estimated from utilization when RAPL is unreadable.",
                CPU_LABELS + ("method", "source"))
CPU_POWER = _m("cpu_power_watts", "gauge", "watts", "Average power over the last sample period by domain.",
               CPU_LABELS + ("method",))
CPU_UTILIZATION = _m("cpu_utilization_ratio", "gauge", "ratio", "Host CPU busy fraction over the last sample period.")
CPU_CORES = _m("cpu_logical_cores", "gauge", "", "Logical CPUs seen by the exporter.")
MEMORY_USED = _m("memory_used_bytes", "gauge", "bytes", "Host memory in use.")
MEMORY_TOTAL = _m("memory_total_bytes", "gauge", "bytes", "Host memory installed.")

# --- exporter: energy by workload (Kubernetes pods, Slurm jobs) ---------------
# Components attributed, and the share a joule went to. For share != "workload" the namespace, pod,
# container and workload labels are empty. Per node and component the series add up to the node's
# measured energy of that component since attribution started (see docs/workloads.md).
WORKLOAD_COMPONENTS: tuple[str, ...] = ("gpu", "cpu", "dram")
SHARE_WORKLOAD = "workload"
SHARE_UNALLOCATED = "unallocated"   # a GPU (or MIG instance) no pod holds
SHARE_IDLE = "idle"                 # the CPU's idle part of the interval
SHARE_SYSTEM = "system"             # busy CPU time outside every workload cgroup (kernel, daemons, kubelet)
WORKLOAD_SHARES: tuple[str, ...] = (SHARE_WORKLOAD, SHARE_UNALLOCATED, SHARE_IDLE, SHARE_SYSTEM)
WORKLOAD_LABELS = ("component", "namespace", "pod", "container", "workload", "share")
WORKLOAD_ENERGY = _m("workload_energy_joules", "counter", "joules",
                     "Node energy by workload since attribution started: GPUs by the kubelet's device assignment, "
                     "CPU and DRAM by cgroup CPU time; share says workload, unallocated, idle or system.",
                     WORKLOAD_LABELS)
WORKLOAD_MAPPING_AGE = _m("workload_mapping_age_seconds", "gauge", "seconds",
                          "Age of the GPU-to-pod mapping in use (time since the kubelet's pod-resources List "
                          "last answered).")
WORKLOAD_CGROUPS = _m("workload_cgroups", "gauge", "", "Workload cgroups found by the last scan, by kind.",
                      ("kind",))

# --- exporter: counter corrections and health ------------------------------
COUNTER_WRAPS = _m("energy_wraps_corrected", "counter", "",
                   "Hardware energy counter wraparounds corrected.", ("sensor", "device"))
COUNTER_RESETS = _m("energy_resets_corrected", "counter", "",
                    "Hardware energy counter resets (driver reload, zone re-created) corrected.", ("sensor", "device"))
COLLECTOR_ENABLED = _m("collector_enabled", "gauge", "",
                       "1 when the collector found its hardware or library at start, 0 when absent.",
                       ("collector",))
COLLECTOR_UP = _m("collector_up", "gauge", "", "1 when the collector's last sample succeeded.", ("collector",))
ENERGY_RECOVERED = _m("energy_recovered_joules", "counter", "joules",
                      "Energy a collector's cumulative counters showed when it answered again after timing out "
                      "(already inside the energy counters; apart here for auditing).", ("collector",))
COLLECTOR_ERRORS = _m("collector_errors", "counter", "", "Sampling errors by collector and reason.",
                      ("collector", "reason"))
SAMPLE_DURATION = _m("sample_duration_seconds", "gauge", "seconds", "Wall time of the collector's last sample.",
                     ("collector",))
LAST_SAMPLE = _m("last_sample_timestamp_seconds", "gauge", "seconds",
                 "Unix time of the snapshot being served.")
BUILD_INFO = _m("build", "info", "", "wattfleet version and runtime.", ("version", "python_version"))

# --- exporter: inference engines (prefill vs decode) -----------------------
INFERENCE_TOKENS = _m("inference_tokens", "counter", "",
                      "Tokens by phase: prefill = prompt tokens computed on this engine (every prompt token where the "
                      "engine does not split them), decode = generated tokens.",
                      ENGINE_LABELS + ("phase",), "inference")
# Where an engine's prompt tokens came from (issue 14): computed by a forward pass, read from its prefix
# cache, or received as KV from elsewhere (disaggregated prefill); ``unsplit`` when the engine does not say
# (all prompt tokens, nothing guessed). ``phase="prefill"`` tokens are the computed ones where split.
PROMPT_SOURCE_COMPUTED = "computed"
PROMPT_SOURCE_CACHED = "cached"
PROMPT_SOURCE_TRANSFERRED = "transferred"
PROMPT_SOURCE_UNSPLIT = "unsplit"
PROMPT_SOURCES: tuple[str, ...] = (PROMPT_SOURCE_COMPUTED, PROMPT_SOURCE_CACHED, PROMPT_SOURCE_TRANSFERRED,
                                   PROMPT_SOURCE_UNSPLIT)
INFERENCE_PROMPT_TOKENS = _m("inference_prompt_tokens", "counter", "",
                             "Prompt tokens by source: computed, cached (prefix-cache hit), transferred (KV from "
                             "elsewhere), or unsplit where the engine does not split them.",
                             ENGINE_LABELS + ("source",), "inference")
INFERENCE_REQUESTS = _m("inference_requests", "counter", "", "Requests finished.", ENGINE_LABELS, "inference")
INFERENCE_PHASE_BUSY = _m("inference_phase_busy_seconds", "counter", "seconds",
                          "Engine time spent in each phase, where the engine reports it.",
                          ENGINE_LABELS + ("phase",), "inference")
INFERENCE_PHASE_ENERGY = _m("inference_phase_energy_joules", "counter", "joules",
                            "GPU energy attributed to each phase; method names the attribution.",
                            ENGINE_LABELS + ("phase", "method"), "inference")
INFERENCE_RUNNING = _m("inference_running_requests", "gauge", "", "Requests running now.", ENGINE_LABELS, "inference")
INFERENCE_WAITING = _m("inference_waiting_requests", "gauge", "", "Requests queued now.", ENGINE_LABELS, "inference")
INFERENCE_KV_CACHE = _m("inference_kv_cache_usage_ratio", "gauge", "ratio", "KV-cache fill.",
                        ENGINE_LABELS, "inference")
INFERENCE_ENGINE_UP = _m("inference_engine_up", "gauge", "", "1 when the engine's metrics endpoint answered.",
                         ("engine", "endpoint"), "inference")
INFERENCE_ENGINE_GPUS = _m("inference_engine_gpu", "info", "", "GPUs an engine runs on (configured mapping).",
                           ENGINE_LABELS + ("gpu",), "inference")
INFERENCE_REQUEST_PHASE_SECONDS = _m("inference_request_phase_seconds", "counter", "seconds",
                                     "Request-seconds in each phase summed over requests (vLLM per-request prefill "
                                     "and decode time); concurrent requests overlap, so this is not engine time.",
                                     ENGINE_LABELS + ("phase",), "inference")
INFERENCE_REJECTED = _m("inference_rejected_samples", "counter", "",
                        "Engine page values rejected and never summed (not finite, negative, too large, implausible "
                        "rate, counter dip, marked energy above the GPUs' energy, model limit, replicated endpoint).",
                        ("engine", "endpoint", "reason"), "inference")
INFERENCE_ATTRIBUTION = _m("inference_phase_attribution", "info", "",
                           "How this engine's phase energy is attributed: method, whether chunked prefill mixes "
                           "decode into prefill forwards (true, false, unknown), and the assumption that follows.",
                           ENGINE_LABELS + ("method", "chunked_prefill", "assumption"), "inference")
# Values of ``assumption`` on INFERENCE_ATTRIBUTION.
ASSUME_SEPARATE_PHASES = "separate_phases"            # every forward pass is one phase: phase time is exact
ASSUME_MIXED_AS_PREFILL = "mixed_forward_as_prefill"  # a forward that prefills also decodes; all of it is prefill
ASSUME_TOKEN_FIT = "token_fit"                        # no phase time: the aggregator fits energy on tokens
# Phase label value for energy in no phase (engine idle or between forward passes).
PHASE_IDLE = "idle"
# Values of ``method`` on INFERENCE_PHASE_ENERGY: split by engine-reported phase time (TGI), marked
# by the serving code (exporter.inference.phase), or fitted from tokens by the aggregator.
PHASE_METHOD_TIME = "phase_time"
PHASE_METHOD_MARKED = "marked"
PHASE_METHOD_TOKEN_FIT = "token_fit"

# --- aggregator `serve` endpoint --------------------------------------------
# Published without the exporter's node labels: these describe sites and zones.
GRID_INTENSITY = _m("grid_intensity_grams_per_kwh", "gauge", "grams_per_kwh",
                    "Grid carbon intensity of the current hour (gCO2e/kWh).",
                    ("zone", "signal", "source"), "aggregator", False)
GRID_INTENSITY_AGE = _m("grid_intensity_age_seconds", "gauge", "seconds",
                        "Age of the newest grid intensity value per zone.", ("zone",), "aggregator", False)
SITE_PUE = _m("site_pue_ratio", "gauge", "ratio", "Power usage effectiveness (facility / IT energy, >= 1).",
              ("site", "zone"), "aggregator", False)
SITE_WUE = _m("site_wue_liters_per_kwh", "gauge", "liters_per_kwh",
              "Water usage effectiveness (on-site litres / IT kWh).", ("site", "zone"), "aggregator", False)
SITE_INFO = _m("site", "info", "", "Site to grid zone mapping.", ("site", "zone"), "aggregator", False)
ROLLUP_ENERGY = _m("rollup_energy_joules", "gauge", "joules",
                   "Energy in the current month so far, by site and kind (it, facility).",
                   ("site", "kind", "period"), "aggregator", False)
ROLLUP_EMISSIONS = _m("rollup_emissions_grams", "gauge", "grams",
                      "Emissions in the current month so far by site and scope "
                      "(scope1, scope2_location, scope2_market, scope3).",
                      ("site", "scope", "period"), "aggregator", False)
ROLLUP_WATER = _m("rollup_water_liters", "gauge", "liters", "Water in the current month so far, by site and kind.",
                  ("site", "kind", "period"), "aggregator", False)
ROLLUP_CFE = _m("rollup_cfe_ratio", "gauge", "ratio", "Hourly-matched carbon-free energy score, current month.",
                ("site", "period"), "aggregator", False)
CARBON_BUDGET = _m("carbon_budget_grams", "gauge", "grams", "Configured carbon budget per period.",
                   ("scope_owner", "period"), "aggregator", False)
CARBON_BUDGET_USED = _m("carbon_budget_used_grams", "gauge", "grams", "Emissions counted against the budget.",
                        ("scope_owner", "period"), "aggregator", False)
AGGREGATOR_WATERMARK = _m("aggregator_watermark_timestamp_seconds", "gauge", "seconds",
                          "End of the last fully ingested hour.", (), "aggregator", False)
AGGREGATOR_KEPT_WINDOWS = _m("aggregator_kept_windows", "counter", "",
                            "Times an ingest run kept a stored window (source, hour) instead of replacing it: "
                            "the store answered less than was stored (raw re-read) or the hour's recorded series "
                            "are incomplete (pre-aggregated); the stored energy is kept.",
                            ("source", "mode"), "aggregator", False)
AGGREGATOR_LAST_KEPT = _m("aggregator_last_kept_timestamp_seconds", "gauge", "seconds",
                          "Unix time an ingest run last kept a stored hour instead of replacing it.",
                          ("source", "mode"), "aggregator", False)


def all_metrics() -> Iterator[Metric]:
    """Every metric in the catalog, in definition order."""
    for value in globals().values():
        if isinstance(value, Metric):
            yield value


def by_component(component: Component) -> list[Metric]:
    return [m for m in all_metrics() if m.component == component]


_INDEX: dict[str, Metric] = {}


def lookup(series: str) -> Metric:
    """The catalog entry for a family or sample name (``..._total`` included)."""
    if not _INDEX:
        for m in all_metrics():
            _INDEX[m.name] = _INDEX[m.series] = m
    try:
        return _INDEX[series]
    except KeyError:
        raise KeyError(f"{series!r} is not in the wattfleet metric catalog") from None


def markdown_table() -> str:
    """The catalog as the Markdown table README.md embeds (tests keep the two equal)."""
    rows = ["| metric | type | labels | component | meaning |", "|---|---|---|---|---|"]
    for m in all_metrics():
        labels = ", ".join(m.all_labels) or "-"
        rows.append(f"| `{m.series}` | {m.kind} | {labels} | {m.component} | {m.help} |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m wattfleet.core.catalog > table.md
    print(markdown_table())
