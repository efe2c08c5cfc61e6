"""Recording and alerting rules: ``promtool check rules`` and ``promtool test rules`` on generated unit tests.

The unit tests are built here from the catalog (so a renamed metric cannot
leave a stale fixture behind) and written next to the rule files; every
recording rule and every alert must be covered, with hand-computed values.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from promserver import PROMTOOL
from wattfleet.core import catalog
from wattfleet.dashboards import rules as r
from wattfleet.dashboards.build import ALERTS_FILE, RECORDING_FILE, render, write
from wattfleet.dashboards.sustainability import NONE_KEPT, kept_stored_hours

pytestmark = pytest.mark.prometheus

N1 = {"cluster": "c1", "site": "s1", "node": "n1"}
N2 = {"cluster": "c1", "site": "s1", "node": "n2"}
N3 = {"cluster": "c1", "site": "s1", "node": "n3"}
N4 = {"cluster": "c1", "site": "s2", "node": "n4"}
N5 = {"cluster": "c1", "site": "s9", "node": "n5"}
SCRAPE = {"job": "wattfleet", "instance": "n1:9880"}


def series(metric: catalog.Metric | str, labels: dict[str, str], values: str) -> dict[str, str]:
    name = metric.series if isinstance(metric, catalog.Metric) else metric
    body = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{body}}}", "values": values}


def _labels(**kw: str) -> dict[str, str]:
    return dict(kw)


# --- recording rules -----------------------------------------------------------
# Every 15 s for 10 minutes. n1: one GPU at 300 W, CPU package 120 W + dram 20 W
# (core and psys present but overlapping: they must not count). n2: CPU only,
# package 100 W + dram 40 W. Site s1 in zone Z1: PUE 1.5, WUE 1.8 L/kWh, 400 g/kWh.
# n4 is at site s2 in zone Z2 (PUE 1.1 published by two aggregator replicas, WUE 0.4, 20 g/kWh): one
# GPU at 200 W and a 50 W package. The joins must take each node's own site PUE and zone intensity.
GPU0 = {**N1, "gpu": "0", "uuid": "GPU-0", "gpu_model": "H100", **SCRAPE}
GPU4 = {**N4, "gpu": "0", "uuid": "GPU-4", "gpu_model": "A100", **SCRAPE}
STEP = 15
# January 1970 (promtool's clock) has 31 days: a budget that allows exactly 10 g/s.
MONTH_SECONDS = 31 * 86400
BUDGET_G = 10.0 * MONTH_SECONDS


def _joules(watts: float, samples: int = 40) -> str:
    return f"0+{watts * STEP:g}x{samples}"


def recording_input() -> list[dict[str, str]]:
    cpu = lambda node, socket, domain: {**node, "socket": socket, "domain": domain,  # noqa: E731
                                        "method": "measured", "source": "rapl", **SCRAPE}
    est = lambda node, domain: {**node, "socket": "all", "domain": domain,  # noqa: E731
                                "method": "estimated", "source": "cpu_model", **SCRAPE}
    engine = {**N1, "engine": "vllm", "model": "llama", **SCRAPE}
    marked_engine = {**N1, "engine": "tgi", "model": "bloom", **SCRAPE}
    timed, marked = catalog.PHASE_METHOD_TIME, catalog.PHASE_METHOD_MARKED
    agg = {"job": "wattfleet-aggregator", "instance": "agg:9881"}
    return [
        series(catalog.GPU_ENERGY, {**GPU0, "method": "measured", "source": "nvml_energy_counter"}, _joules(300)),
        series(catalog.CPU_ENERGY, cpu(N1, "0", "package"), _joules(120)),
        series(catalog.CPU_ENERGY, cpu(N1, "0", "dram"), _joules(20)),
        series(catalog.CPU_ENERGY, cpu(N1, "0", "core"), _joules(80)),
        series(catalog.CPU_ENERGY, cpu(N1, "platform", "psys"), _joules(500)),
        series(catalog.CPU_ENERGY, cpu(N2, "0", "package"), _joules(100)),
        series(catalog.CPU_ENERGY, cpu(N2, "0", "dram"), _joules(40)),
        # n2 also runs the estimated model (--estimate-cpu always): measured wins, no double count.
        series(catalog.CPU_ENERGY, est(N2, "package"), _joules(999)),
        # n3 has no readable RAPL: its estimate is all there is.
        series(catalog.CPU_ENERGY, est(N3, "package"), _joules(50)),
        series(catalog.CPU_ENERGY, est(N3, "dram"), _joules(10)),
        series(catalog.INFERENCE_PHASE_ENERGY, {**engine, "phase": "prefill", "method": timed}, _joules(100)),
        series(catalog.INFERENCE_PHASE_ENERGY, {**engine, "phase": "decode", "method": timed}, _joules(150)),
        series(catalog.INFERENCE_PHASE_ENERGY, {**engine, "phase": catalog.PHASE_IDLE, "method": timed}, _joules(50)),
        # An engine with phase markers that TGI's forward times also split: the marked figure alone counts.
        series(catalog.INFERENCE_PHASE_ENERGY, {**marked_engine, "phase": "prefill", "method": marked}, _joules(50)),
        series(catalog.INFERENCE_PHASE_ENERGY, {**marked_engine, "phase": "decode", "method": marked}, _joules(70)),
        series(catalog.INFERENCE_PHASE_ENERGY, {**marked_engine, "phase": "prefill", "method": timed}, _joules(40)),
        series(catalog.INFERENCE_PHASE_ENERGY, {**marked_engine, "phase": "decode", "method": timed}, _joules(80)),
        # prompt tokens by source: vLLM splits them (computed, cached, transferred); TGI does not (unsplit)
        series(catalog.INFERENCE_PROMPT_TOKENS, {**engine, "source": "computed"}, _joules(1000)),
        series(catalog.INFERENCE_PROMPT_TOKENS, {**engine, "source": "cached"}, _joules(3000)),
        series(catalog.INFERENCE_PROMPT_TOKENS, {**engine, "source": "transferred"}, _joules(0)),
        series(catalog.INFERENCE_PROMPT_TOKENS, {**marked_engine, "source": "unsplit"}, _joules(500)),
        series(catalog.SITE_PUE, {"site": "s1", "zone": "Z1", **agg}, "1.5x40"),
        series(catalog.SITE_WUE, {"site": "s1", "zone": "Z1", **agg}, "1.8x40"),
        series(catalog.GPU_ENERGY, {**GPU4, "method": "measured", "source": "nvml_energy_counter"}, _joules(200)),
        series(catalog.CPU_ENERGY, cpu(N4, "0", "package"), _joules(50)),
        series(catalog.SITE_PUE, {"site": "s2", "zone": "Z2", **agg}, "1.1x40"),
        series(catalog.SITE_PUE, {"site": "s2", "zone": "Z2", **agg, "instance": "agg-2:9881"}, "1.1x40"),
        series(catalog.SITE_WUE, {"site": "s2", "zone": "Z2", **agg}, "0.4x40"),
        series(catalog.GRID_INTENSITY, {"zone": "Z2", "signal": "average", "source": "static", **agg}, "20x40"),
        series(catalog.GRID_INTENSITY, {"zone": "Z2", "signal": "marginal", "source": "wt", **agg}, "50x40"),
        series(catalog.GRID_INTENSITY, {"zone": "Z1", "signal": "average", "source": "eia930", **agg}, "400x40"),
        series(catalog.GRID_INTENSITY, {"zone": "Z1", "signal": "average", "source": "static", **agg}, "380x40"),
        series(catalog.GRID_INTENSITY, {"zone": "Z1", "signal": "marginal", "source": "wt", **agg}, "900x40"),
        series(catalog.CARBON_BUDGET, {"scope_owner": "team:ml", "period": "1970-01", **agg}, f"{BUDGET_G:g}x40"),
        series(catalog.CARBON_BUDGET_USED, {"scope_owner": "team:ml", "period": "1970-01", **agg},
               f"0+{20 * STEP}x40"),
        # A finished month: its used figure no longer grows, whatever the overrun.
        series(catalog.CARBON_BUDGET, {"scope_owner": "team:ml", "period": "1969-12", **agg}, "1000x40"),
        series(catalog.CARBON_BUDGET_USED, {"scope_owner": "team:ml", "period": "1969-12", **agg}, "5000x40"),
        # energy by workload on n1 (s1) and n4 (s2); empty labels are absent, as after a scrape
        series(catalog.WORKLOAD_ENERGY, wl(N1, "gpu", "workload", "ml", "train", "main"), _joules(250)),
        series(catalog.WORKLOAD_ENERGY, wl(N1, "gpu", "workload", "ml", "train", "side"), _joules(5)),
        series(catalog.WORKLOAD_ENERGY, wl(N1, "gpu", "unallocated"), _joules(45)),
        series(catalog.WORKLOAD_ENERGY, wl(N1, "cpu", "workload", "ml", "train"), _joules(60)),
        series(catalog.WORKLOAD_ENERGY, wl(N1, "cpu", "idle"), _joules(40)),
        series(catalog.WORKLOAD_ENERGY, wl(N1, "cpu", "system"), _joules(20)),
        series(catalog.WORKLOAD_ENERGY, wl(N1, "dram", "workload", "web", "api"), _joules(10)),
        series(catalog.WORKLOAD_ENERGY, wl(N1, "dram", "idle"), _joules(10)),
        series(catalog.WORKLOAD_ENERGY, wl(N4, "gpu", "workload", "ml", "infer", "main"), _joules(200)),
    ]


def wl(node: dict[str, str], component: str, share: str, namespace: str = "", pod: str = "",
       container: str = "") -> dict[str, str]:
    """Labels of a workload energy series; empty ones left out."""
    labels = {**node, "component": component, "namespace": namespace, "pod": pod, "container": container,
              "share": share, **SCRAPE}
    return {k: v for k, v in labels.items() if v}


def _expect(expr: str, *samples: tuple[dict[str, str], float]) -> dict[str, Any]:
    return {"expr": expr, "eval_time": "5m",
            "exp_samples": [{"labels": expr + "{" + ",".join(f'{k}="{v}"' for k, v in lbl.items()) + "}", "value": v}
                            for lbl, v in samples]}


def recording_tests() -> list[dict[str, Any]]:
    site = {"s1": ("Z1", 1.5, 400.0, 1.8), "s2": ("Z2", 1.1, 20.0, 0.4)}  # zone, PUE, g/kWh, WUE

    def carbon(watts: float, s: str = "s1") -> float:
        """Grams per second, in the order PromQL multiplies (so floats compare equal)."""
        _, pue, grams, _ = site[s]
        return watts * pue * grams / 3.6e6

    nodes = [(N1, 300 + 120 + 20), (N2, 100 + 40), (N3, 50 + 10), (N4, 200 + 50)]
    s1 = [w for n, w in nodes if n["site"] == "s1"]
    site_it = sum(s1)
    z = {"zone": "Z1"}

    def zone(n: dict[str, str]) -> dict[str, str]:
        return {**n, "zone": site[n["site"]][0]}

    gpu = {k: GPU0[k] for k in ("cluster", "site", "node", "gpu", "uuid", "gpu_model")}
    gpu4 = {k: GPU4[k] for k in gpu}
    eng = {**N1, "engine": "vllm", "model": "llama"}
    return [
        _expect(r.GPU_POWER_RATE, (gpu, 300), (gpu4, 200)),
        _expect(r.NODE_IT_POWER, *nodes),
        _expect(r.NODE_FACILITY_POWER, *[(zone(n), w * site[n["site"]][1]) for n, w in nodes]),
        _expect(r.NODE_CARBON_RATE, *[(zone(n), carbon(w, n["site"])) for n, w in nodes]),
        _expect(r.NODE_WATER_RATE, *[(zone(n), w * site[n["site"]][3] / 3.6e6) for n, w in nodes]),
        _expect(r.GPU_CARBON_RATE, ({**gpu, **z}, carbon(300)), (zone(gpu4), carbon(200, "s2"))),
        _expect(r.INFERENCE_CARBON_RATE, ({**eng, **z}, carbon(300)),
                ({**eng, "engine": "tgi", "model": "bloom", **z}, carbon(50 + 70))),
        _expect(r.INFERENCE_PROMPT_RATE, ({**eng, "source": "computed"}, 1000), ({**eng, "source": "cached"}, 3000),
                ({**eng, "source": "transferred"}, 0), ({**eng, "engine": "tgi", "model": "bloom", "source": "unsplit"},
                                                        500)),
        _expect(r.SITE_IT_POWER, ({"site": "s1"}, site_it), ({"site": "s2"}, 250)),
        _expect(r.SITE_FACILITY_POWER, ({"site": "s1", **z}, site_it * 1.5), ({"site": "s2", "zone": "Z2"}, 250 * 1.1)),
        _expect(r.SITE_CARBON_RATE, ({"site": "s1", **z}, sum(carbon(w) for w in s1)),
                ({"site": "s2", "zone": "Z2"}, carbon(250, "s2"))),
        _expect(r.SITE_WATER_RATE, ({"site": "s1", **z}, site_it * 1.8 / 3.6e6),
                ({"site": "s2", "zone": "Z2"}, 250 * 0.4 / 3.6e6)),
        _expect(r.BUDGET_BURN_RATE, ({"scope_owner": "team:ml", "period": "1969-12"}, 0.0),
                ({"scope_owner": "team:ml", "period": "1970-01"}, 2.0)),  # 20 g/s against 10 g/s allowed
        # per pod: the two containers of ml/train on n1's GPU are summed
        _expect(r.NODE_WORKLOAD_POWER, *[({k: v for k, v in lbl.items() if k not in ("container", "job", "instance")},
                                          w) for lbl, w in (
            (wl(N1, "gpu", "workload", "ml", "train"), 255), (wl(N1, "gpu", "unallocated"), 45),
            (wl(N1, "cpu", "workload", "ml", "train"), 60), (wl(N1, "cpu", "idle"), 40),
            (wl(N1, "cpu", "system"), 20), (wl(N1, "dram", "workload", "web", "api"), 10),
            (wl(N1, "dram", "idle"), 10), (wl(N4, "gpu", "workload", "ml", "infer"), 200))]),
        _expect(r.NAMESPACE_POWER, ({"cluster": "c1", "site": "s1", "namespace": "ml", "share": "workload"}, 315),
                ({"cluster": "c1", "site": "s1", "namespace": "web", "share": "workload"}, 10),
                ({"cluster": "c1", "site": "s1", "share": "unallocated"}, 45),
                ({"cluster": "c1", "site": "s1", "share": "idle"}, 50),
                ({"cluster": "c1", "site": "s1", "share": "system"}, 20),
                ({"cluster": "c1", "site": "s2", "namespace": "ml", "share": "workload"}, 200)),
        _expect(r.NAMESPACE_CARBON_RATE, ({"cluster": "c1", "site": "s1", "namespace": "ml", **z}, carbon(315)),
                ({"cluster": "c1", "site": "s1", "namespace": "web", **z}, carbon(10)),
                ({"cluster": "c1", "site": "s2", "namespace": "ml", "zone": "Z2"}, carbon(200, "s2"))),
    ]


# --- alerts ----------------------------------------------------------------------
def _alert(name: str, at: str, *alerts: tuple[dict[str, str], dict[str, str]]) -> dict[str, Any]:
    return {"alertname": name, "eval_time": at,
            "exp_alerts": [{"exp_labels": lbl, "exp_annotations": ann} for lbl, ann in alerts]}


def alert_input() -> list[dict[str, str]]:
    gpu1 = {**GPU0, "gpu": "1", "uuid": "GPU-1"}
    agg = {"job": "wattfleet-aggregator", "instance": "agg:9881"}
    collector = lambda name: {**N1, "collector": name, **SCRAPE}  # noqa: E731
    return [
        series("up", {"job": "wattfleet-exporter", "instance": "n1:9880"}, "1 1 0x30"),
        series("up", {"job": "wattfleet-exporter", "instance": "n2:9880"}, "1x32"),
        series("up", {"job": "kubelet", "instance": "k:10250"}, "0x32"),
        series(catalog.COLLECTOR_UP, collector("rapl"), "1 0x30"),
        series(catalog.COLLECTOR_ENABLED, collector("rapl"), "1x31"),
        series(catalog.COLLECTOR_UP, collector("nvml"), "0x31"),
        series(catalog.COLLECTOR_ENABLED, collector("nvml"), "0x31"),
        series(catalog.COUNTER_RESETS, {**N1, "sensor": "nvml", "device": "GPU-0", **SCRAPE}, "0+1x31"),
        # n1's loop publishes every minute (the value is the time itself); n5's froze at 600 s
        series(catalog.LAST_SAMPLE, {**N1, **SCRAPE}, "0+60x31"),
        series(catalog.LAST_SAMPLE, {**N5, **SCRAPE}, "600x31"),
        # nvml on n1 starts timing out at 3m
        series(catalog.COLLECTOR_ERRORS, {**N1, "collector": "nvml", "reason": "timeout", **SCRAPE}, "0 0 0 1+1x28"),
        series(catalog.COLLECTOR_ERRORS, {**N1, "collector": "rapl", "reason": "read_error", **SCRAPE}, "0+1x31"),
        # the vLLM endpoint of n1 is a load-balanced Service: refused from 3m on
        series(catalog.INFERENCE_REJECTED, {**N1, "engine": "vllm", "endpoint": "http://svc:8000/metrics",
                                            "reason": "replicated_endpoint", **SCRAPE}, "0 0 0 1+1x28"),
        series(catalog.COUNTER_RESETS, {**N1, "sensor": "rapl", "device": "intel-rapl:0", **SCRAPE}, "0+0x31"),
        series(catalog.GPU_POWER, GPU0, "300x90"),
        series(catalog.GPU_UTILIZATION, GPU0, "0x90"),
        series(catalog.GPU_POWER, gpu1, "350x90"),
        series(catalog.GPU_UTILIZATION, gpu1, "0.9x90"),
        series(catalog.GRID_INTENSITY_AGE, {"zone": "Z1", **agg}, "20000x31"),
        series(catalog.GRID_INTENSITY_AGE, {"zone": "Z2", **agg}, "600x31"),
        series(catalog.CARBON_BUDGET, {"scope_owner": "team:ml", "period": "1970-01", **agg}, f"{BUDGET_G:g}x90"),
        series(catalog.CARBON_BUDGET_USED, {"scope_owner": "team:ml", "period": "1970-01", **agg},
               f"0+{20 * 60}x90"),  # 20 g/s: burn rate 2
        series(catalog.CARBON_BUDGET, {"scope_owner": "model:llama", "period": "1970-01", **agg},
               f"{BUDGET_G:g}x90"),
        series(catalog.CARBON_BUDGET_USED, {"scope_owner": "model:llama", "period": "1970-01", **agg},
               f"0+{5 * 60}x90"),  # 5 g/s: burn rate 0.5, under target
        series(catalog.AGGREGATOR_WATERMARK, agg, "0x400"),
        # a raw re-read kept a stored hour at 10m (the serve gauge appears then, the time of that run)
        series(catalog.AGGREGATOR_LAST_KEPT, {"source": "prometheus", "mode": "raw", **agg}, "_x10 600x400"),
        # n1's kubelet stopped answering at 0: the mapping ages a minute a minute; n2's answers every 5 s
        series(catalog.WORKLOAD_MAPPING_AGE, {**N1, **SCRAPE}, "0+60x31"),
        series(catalog.WORKLOAD_MAPPING_AGE, {**N2, **SCRAPE}, "5x31"),
    ]


def workload_input() -> list[dict[str, str]]:
    """Every 15 s for 2.5 h: n1's unheld GPUs draw 300 W, n2's 100 W (below the bound)."""
    gpu = lambda node: {**node, "component": "gpu", "share": "unallocated", **SCRAPE}  # noqa: E731
    return [series(catalog.WORKLOAD_ENERGY, gpu(N1), _joules(300, 600)),
            series(catalog.WORKLOAD_ENERGY, gpu(N2), _joules(100, 600))]


def accounting_input() -> list[dict[str, str]]:
    """Every 15 s: n1 (site s1, zone Z1) is accounted; n5's site s9 is in no facility config: no PUE, no carbon."""
    agg = {"job": "wattfleet-aggregator", "instance": "agg:9881"}
    return [
        series(catalog.GPU_ENERGY, {**GPU0, "method": "measured", "source": "nvml_energy_counter"}, _joules(300, 120)),
        series(catalog.GPU_ENERGY, {**GPU0, **N5, "method": "measured", "source": "nvml_energy_counter"},
               _joules(300, 120)),
        series(catalog.SITE_PUE, {"site": "s1", "zone": "Z1", **agg}, "1.5x120"),
        series(catalog.GRID_INTENSITY, {"zone": "Z1", "signal": "average", "source": "static", **agg}, "400x120"),
    ]


def panel_input() -> list[dict[str, str]]:
    """Every minute, two serve replicas of one store: a raw re-read keeps one stored hour at 10m, two more at 20m."""
    replicas = [{"job": "wattfleet-aggregator", "instance": f"agg-{i}:9881"} for i in (1, 2)]
    out = [series(catalog.AGGREGATOR_WATERMARK, agg, "0x40") for agg in replicas]
    out += [series(catalog.AGGREGATOR_KEPT_WINDOWS, {"source": "prometheus", "mode": "raw", **agg}, "_x10 1x9 3x20")
            for agg in replicas]
    return out


def panel_tests() -> list[dict[str, Any]]:
    """Panel queries over series that are absent until something happens (the live stack shows only that case)."""
    def at(when: str, labels: dict[str, str], value: float) -> dict[str, Any]:
        body = ",".join(f'{k}="{v}"' for k, v in labels.items())
        return {"expr": kept_stored_hours(), "eval_time": when, "exp_samples": [{"labels": f"{{{body}}}",
                                                                                  "value": value}]}

    kept = {"mode": "raw", "source": "prometheus"}
    # nothing kept yet: the zero line; then the store's count, once (replicas not summed), and no zero line
    return [at("5m", NONE_KEPT, 0), at("15m", kept, 1), at("25m", kept, 3)]


ACCOUNTING_ALERTS = {"WattfleetCarbonNotAccounted"}  # need rate windows: their input comes every 15 s
WORKLOAD_ALERTS = {"WattfleetUnallocatedGpuPower"}  # a rate window too, and a 2 h `for`


def alert_tests(cfg: r.RuleConfig) -> list[dict[str, Any]]:
    sev = lambda s: {"severity": s}  # noqa: E731
    ann = {a["alert"]: a["annotations"] for g in r.alerting_rules(cfg) for a in g["rules"]}

    def expand(name: str, **values: str) -> dict[str, str]:
        out = {}
        for key, text in ann[name].items():
            for k, v in values.items():
                text = text.replace("{{ " + k + " }}", v)
            out[key] = text
        return out

    down = {"job": "wattfleet-exporter", "instance": "n1:9880"}
    failing = {**N1, "collector": "rapl", **SCRAPE}
    storm = {**N1, "sensor": "nvml"}
    idle = {k: GPU0[k] for k in GPU0}
    agg_labels = {"job": "wattfleet-aggregator", "instance": "agg:9881"}
    return [
        _alert("WattfleetExporterDown", "5m"),  # down since 2m, `for` 5m: pending only
        _alert("WattfleetExporterDown", "8m", ({**down, **sev("warning")}, expand(
            "WattfleetExporterDown", **{"$labels.instance": "n1:9880", "$labels.job": "wattfleet-exporter"}))),
        _alert("WattfleetCollectorFailing", "5m"),
        _alert("WattfleetCollectorFailing", "12m", ({**failing, **sev("warning")}, expand(
            "WattfleetCollectorFailing", **{"$labels.collector": "rapl", "$labels.node": "n1"}))),
        _alert("WattfleetExporterSnapshotStale", "12m"),  # age 120 s at 12m: not above yet
        _alert("WattfleetExporterSnapshotStale", "16m", ({**N5, **SCRAPE, **sev("warning")}, expand(
            "WattfleetExporterSnapshotStale", **{"$labels.node": "n5", "$value | humanizeDuration": "6m 0s"}))),
        _alert("WattfleetCollectorTimeout", "2m"),
        _alert("WattfleetCollectorTimeout", "6m", ({**N1, "collector": "nvml", "reason": "timeout", **SCRAPE,
                                                    **sev("warning")}, expand(
            "WattfleetCollectorTimeout", **{"$labels.collector": "nvml", "$labels.node": "n1"}))),
        _alert("WattfleetInferenceSamplesRejected", "2m"),
        _alert("WattfleetInferenceSamplesRejected", "10m", ({**N1, "engine": "vllm",
                                                             "endpoint": "http://svc:8000/metrics",
                                                             "reason": "replicated_endpoint", **sev("warning")},
                                                            expand("WattfleetInferenceSamplesRejected", **{
                                                                "$labels.engine": "vllm", "$labels.node": "n1",
                                                                "$labels.reason": "replicated_endpoint"}))),
        _alert("WattfleetCounterResetStorm", "2m"),
        _alert("WattfleetCounterResetStorm", "10m", ({**storm, **sev("warning")}, expand(
            "WattfleetCounterResetStorm", **{"$labels.node": "n1", "$labels.sensor": "nvml", "$value": "10"}))),
        _alert("WattfleetGpuIdlePowerBurn", "50m"),
        _alert("WattfleetGpuIdlePowerBurn", "70m", ({**idle, **sev("info")}, expand(
            "WattfleetGpuIdlePowerBurn", **{"$labels.gpu": "0", "$labels.node": "n1", "$value": "300"}))),
        _alert("WattfleetGridIntensityStale", "5m"),
        _alert("WattfleetGridIntensityStale", "15m", ({"zone": "Z1", "job": "wattfleet-aggregator",
                                                        "instance": "agg:9881", **sev("warning")},
                                                       expand("WattfleetGridIntensityStale",
                                                              **{"$labels.zone": "Z1"}))),
        _alert("WattfleetCarbonNotAccounted", "10m"),
        _alert("WattfleetCarbonNotAccounted", "20m", ({**N5, **sev("warning")}, expand(
            "WattfleetCarbonNotAccounted", **{"$labels.node": "n5", "$labels.site": "s9"}))),
        _alert("WattfleetAggregatorBehind", "5h"),
        _alert("WattfleetAggregatorBehind", "6h15m", ({"job": "wattfleet-aggregator", "instance": "agg:9881",
                                                       **sev("warning")}, expand("WattfleetAggregatorBehind"))),
        _alert("WattfleetAggregatorKeptStoredHours", "5m"),  # nothing kept yet
        _alert("WattfleetAggregatorKeptStoredHours", "1h", ({"source": "prometheus", "mode": "raw", **agg_labels,
                                                             **sev("warning")},
                                                            expand("WattfleetAggregatorKeptStoredHours", **{
                                                                "$labels.source": "prometheus",
                                                                "$labels.mode": "raw",
                                                                "$value | humanizeDuration": "50m 0s"}))),
        _alert("WattfleetAggregatorKeptStoredHours", "3h15m"),  # 3 h 5 min after the keep: resolved
        _alert("WattfleetKubeletMappingStale", "5m"),  # 300 s at 5m: not above yet
        _alert("WattfleetKubeletMappingStale", "12m", ({**N1, **SCRAPE, **sev("warning")}, expand(
            "WattfleetKubeletMappingStale", **{"$labels.node": "n1", "$value | humanizeDuration": "12m 0s"}))),
        _alert("WattfleetUnallocatedGpuPower", "1h"),
        _alert("WattfleetUnallocatedGpuPower", "2h20m", ({**N1, **sev("info")}, expand(
            "WattfleetUnallocatedGpuPower", **{"$labels.node": "n1", "$value": "300"}))),
        _alert("WattfleetCarbonBudgetBurnRate", "30m"),
        _alert("WattfleetCarbonBudgetBurnRate", "70m", ({"scope_owner": "team:ml", "period": "1970-01",
                                                         **sev("warning")},
                                                        expand("WattfleetCarbonBudgetBurnRate", **{
                                                            "$labels.scope_owner": "team:ml",
                                                            '$value | printf "%.2f"': "2.00"}))),
    ]


def unit_tests(cfg: r.RuleConfig) -> dict[str, Any]:
    return {
        "rule_files": [Path(RECORDING_FILE).name, Path(ALERTS_FILE).name],
        "evaluation_interval": "15s",
        "tests": [
            {"name": "recording rules", "interval": f"{STEP}s", "input_series": recording_input(),
             "promql_expr_test": recording_tests()},
            {"name": "alerts", "interval": "1m", "input_series": alert_input(),
             "alert_rule_test": [t for t in alert_tests(cfg)
                                 if t["alertname"] not in ACCOUNTING_ALERTS | WORKLOAD_ALERTS]},
            {"name": "workload alerts", "interval": f"{STEP}s", "input_series": workload_input(),
             "alert_rule_test": [t for t in alert_tests(cfg) if t["alertname"] in WORKLOAD_ALERTS]},
            {"name": "carbon accounting alerts", "interval": f"{STEP}s", "input_series": accounting_input(),
             "alert_rule_test": [t for t in alert_tests(cfg) if t["alertname"] in ACCOUNTING_ALERTS]},
            {"name": "dashboard panels", "interval": "1m", "input_series": panel_input(),
             "promql_expr_test": panel_tests()},
        ],
    }


@pytest.fixture(scope="module")
def rule_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rules")
    write(out, render())
    rules = out / "rules"
    (rules / "wattfleet.test.yaml").write_text(yaml.safe_dump(unit_tests(r.RuleConfig()), sort_keys=False))
    return rules


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=60)


def test_promtool_check_rules_is_clean(rule_dir: Path) -> None:
    res = _promtool("check", "rules", rule_dir / Path(RECORDING_FILE).name, rule_dir / Path(ALERTS_FILE).name)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout and "WARNING" not in res.stdout + res.stderr


def test_promtool_unit_tests_pass(rule_dir: Path) -> None:
    res = _promtool("test", "rules", rule_dir / "wattfleet.test.yaml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_unit_tests_cover_every_rule_and_alert() -> None:
    cfg = r.RuleConfig()
    tests = unit_tests(cfg)["tests"]
    exprs = {t["expr"] for group in tests for t in group.get("promql_expr_test", [])}
    firing = {t["alertname"] for group in tests for t in group.get("alert_rule_test", []) if t["exp_alerts"]}
    quiet = {t["alertname"] for group in tests for t in group.get("alert_rule_test", []) if not t["exp_alerts"]}
    assert set(r.recording_rule_names()) <= exprs
    assert set(r.alert_names(cfg)) <= firing, "every alert needs a firing case"
    assert set(r.alert_names(cfg)) <= quiet, "every alert needs a case where it does not fire (yet)"


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    """The check is real: a rule with a syntax error fails it."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": r.NODE_IT_POWER, "expr": f"sum by (node) (rate({catalog.GPU_ENERGY.series}[1m])"}]}]}))
    res = _promtool("check", "rules", bad)
    assert res.returncode != 0


def test_thresholds_come_from_config() -> None:
    cfg = r.RuleConfig(idle_power_watts=150, idle_utilization_ratio=0.1, burn_rate_target=1.5, job_regex="exp")
    alerts = {a["alert"]: a for g in r.alerting_rules(cfg) for a in g["rules"]}
    assert "> 150" in alerts["WattfleetGpuIdlePowerBurn"]["expr"]
    assert "< 0.1" in alerts["WattfleetGpuIdlePowerBurn"]["expr"]
    assert alerts["WattfleetCarbonBudgetBurnRate"]["expr"].endswith("> 1.5")
    assert 'job=~"exp"' in alerts["WattfleetExporterDown"]["expr"]


def test_rule_names_follow_level_metric_operations() -> None:
    for name in r.recording_rule_names():
        level, metric, ops = name.split(":")
        assert level and ops and metric.startswith(catalog.PREFIX + "_"), name


def test_it_power_never_adds_overlapping_rapl_domains() -> None:
    expr = next(x["expr"] for g in r.recording_rules() for x in g["rules"] if x["record"] == r.NODE_IT_POWER)
    assert 'domain=~"package|dram"' in expr
    assert "psys" not in expr and "core" not in expr and "uncore" not in expr
