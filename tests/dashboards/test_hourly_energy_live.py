"""The pre-aggregation rule group (`dashboards build` rules/wattfleet-hourly-energy.yaml) evaluated live.

A real Prometheus scrapes real exporters on fake hardware (fake NVML, fake powercap, a fake pod with
GPU 0 and half a CPU, so all three rules of the group have input) every 250 ms: node-a's throughout,
node-b's replaced in the middle of a window (a rolling update: the old pod stops, a new one at another
address starts its counters from 0). It loads the rendered file twice:

- as shipped, only its evaluation interval shortened to 1 s. Its expressions look at the last whole
  hour (``last_over_time((... increase(c[1h]) ...)[1h:1h])``), which a test of seconds cannot fill
  by scraping; so the store also holds the last whole hour of a node-h (GPU, CPU and workload
  counters at known power, one sample a minute, written by promtool before Prometheus starts). The
  live group must run healthy, record node-h's hour at every evaluation with the same value, exactly
  the raw query's at the hour's end and exactly the energy put in, which the reader's expression
  (at the next hour's end) reads back; for the live exporters it records nothing (no whole hour).
  The live scrape of a whole hour is NOT covered (tests/aggregator/ingest/test_pre_aggregated.py
  checks the whole ingest on promtool's evaluation of hours of history).
- scaled: the same rendered rules with the hour replaced by a ``WINDOW_S`` window (``[1h]`` and
  ``[1h:1h]`` in each expression, the record names' ``increase1h``), evaluated every half window, so
  each window is recorded twice at two offsets within it, as a live Prometheus runs an hourly group
  at a fixed offset within the hour. After a few windows:

  * the recorded series carry exactly the device labels of the rule's ``by`` (no ``job``, ``instance``,
    ``uuid``, ``source``) and the aggregator's reader maps them to the same rows as the raw series;
  * values are finite, >= 0, and for every window equal the raw expression evaluated at the window's
    end T exactly (an evaluation within ``SETTLE_S`` of T is left out of the exact comparison: a
    scrape stamped just before T may not be appended yet; see :func:`test_live_rules`);
  * each value lies within what ``increase()`` may make of the raw counter samples of [T - window, T]:
    at least their difference (no counter resets: the test checks the samples are monotone) and at most
    that difference scaled by window / span of the samples, because Prometheus extrapolates the
    first-to-last difference towards the window's two ends but never past them
    (promql/functions.go extrapolatedRate);
  * the two evaluations of a window record the same value (the step-aligned subquery), and the
    reader's expression (``last_over_time(rec[window] offset 1ms)`` at T + window, the aggregator's
    shifted read) returns that window's value and no other;
  * node-b's window with the replacement holds both pods' parts (regression: the rule's ``max`` over
    all series of a device kept the larger part only).

What this does not cover: a whole hour of live samples, evaluation lag of hours, rules of a failing
group (tests/aggregator/ingest/test_recorded_guard.py), and VictoriaMetrics' rule engine (vmalert).
"""

from __future__ import annotations

import math
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter_fixtures import FakeNode, FakePod, start_fake_node
from fixtures.agg.backfill import History, Series
from promserver import PROMTOOL, PrometheusServer, free_port, have_prometheus
from wattfleet.aggregator.ingest.telemetry import energy_fields_from_labels, workload_fields_from_labels
from wattfleet.core import catalog, hourly_energy
from wattfleet.dashboards.build import HOURLY_ENERGY_FILE, render

pytestmark = [pytest.mark.prometheus, pytest.mark.slow,
              pytest.mark.skipif(not have_prometheus(), reason="prometheus/promtool not installed")]

WINDOW_S = 3          # the live stand-in for the hour
SCRAPE = "250ms"      # 12 samples per window
EVAL_MS = 1500        # two evaluations per window, at different offsets within it
WINDOWS = 3           # complete windows to wait for
SETTLE_S = 0.25       # a scrape stamped before T is appended within this (a local exporter answers in ms)
SHIPPED_GROUP = hourly_energy.recording_rule_group()["name"]
SCALED_GROUP = f"{SHIPPED_GROUP}-{WINDOW_S}s"
RAW = {catalog.GPU_ENERGY.name: hourly_energy.energy_expressions()[catalog.GPU_ENERGY.name],
       catalog.CPU_ENERGY.name: hourly_energy.energy_expressions()[catalog.CPU_ENERGY.name],
       catalog.WORKLOAD_ENERGY.name: hourly_energy.workload_expression()}
RECORDS = {**hourly_energy.RECORDED, catalog.WORKLOAD_ENERGY.name: hourly_energy.RECORDED_WORKLOAD}
READERS = {**hourly_energy.recorded_expressions(),
           catalog.WORKLOAD_ENERGY.name: hourly_energy.recorded_workload_expression()}
# The labels the rule keeps (its ``by``); inner ``max by`` of the workload rule first, then its ``sum by``.
BY = {catalog.GPU_ENERGY.name: hourly_energy.GPU_LABELS, catalog.CPU_ENERGY.name: hourly_energy.CPU_LABELS,
      catalog.WORKLOAD_ENERGY.name: hourly_energy.WORKLOAD_LABELS}
# Inside: what tells one target's series apart, and the target (an exporter replaced is another target).
INNER_BY = {name: labels + hourly_energy.TARGET_LABELS for name, labels in BY.items()}
INNER_BY[catalog.WORKLOAD_ENERGY.name] = hourly_energy.WORKLOAD_SERIES_LABELS + hourly_energy.TARGET_LABELS
NODE_B = "node-b"
# What each recorded series must carry (the exporter here is newer than the gpu_model rename: no legacy
# ``model``). No job, instance, uuid, source, pod or container; namespace and workload only on share=workload.
_NODE = set(catalog.CONST_LABELS)
EXPECTED_LABELS = {
    (catalog.GPU_ENERGY.name, ""): _NODE | {"gpu", "gpu_model", "method"},
    (catalog.CPU_ENERGY.name, ""): _NODE | {"socket", "domain", "method"},
    (catalog.WORKLOAD_ENERGY.name, ""): _NODE | {"component", "share"},
    (catalog.WORKLOAD_ENERGY.name, catalog.SHARE_WORKLOAD): _NODE | {"component", "namespace", "workload", "share"},
}


Labels = tuple[tuple[str, str], ...]


def scaled(text: str) -> str:
    """The hour replaced by ``WINDOW_S`` in windows and record names; everything else as rendered."""
    def window(expr: str) -> str:
        assert expr.count("[1h]") == 1 and expr.count("[1h:1h]") == 1, expr
        return expr.replace("[1h]", f"[{WINDOW_S}s]").replace("[1h:1h]", f"[{WINDOW_S}s:{WINDOW_S}s]")

    doc = yaml.safe_load(text)
    (group,) = doc["groups"]
    group["name"], group["interval"] = SCALED_GROUP, f"{EVAL_MS}ms"
    for rule in group["rules"]:
        assert rule["record"].endswith(":increase1h"), rule
        rule["record"] = record(rule["record"])
        rule["expr"] = window(rule["expr"])
    return yaml.safe_dump(doc, sort_keys=False)


def record(name: str) -> str:
    return name.removesuffix(":increase1h") + f":increase{WINDOW_S}s"


def at_window(expr: str) -> str:
    assert "[1h]" in expr and "1h:" not in expr, expr
    return expr.replace("[1h]", f"[{WINDOW_S}s]")


def counter_selector(expr: str) -> str:
    """The counter selector inside a rule's ``increase(...[1h])``."""
    found = re.findall(r"increase\((.*?)\[1h\]\)", expr)
    assert len(found) == 1, expr
    return found[0]


def narrowed(selector: str, matcher: str) -> str:
    """``selector`` with one more label matcher."""
    return f"{selector[:-1]}, {matcher}}}" if selector.endswith("}") else f"{selector}{{{matcher}}}"


def promtool_check(path: Path) -> None:
    proc = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"SUCCESS: {len(RECORDS)} rules found" in out and "WARNING" not in out and "FAILED" not in out, out


# node-h: the last whole hour before the test, one sample a minute, as scraped (job, instance) at these rates.
NODE_H = "node-h"
HISTORY_WATTS = {catalog.GPU_ENERGY.name: 250.0, catalog.CPU_ENERGY.name: 100.0,
                 catalog.WORKLOAD_ENERGY.name: 150.0}


def last_hour(end: datetime) -> History:
    """node-h's counters over the hour ending at ``end`` (and 5 minutes before it), nothing later."""
    node = {"node": NODE_H, "cluster": "c1", "site": "site-a", "job": "wattfleet", "instance": "node-h:9880"}
    labels = {
        catalog.GPU_ENERGY.name: {"gpu": "0", "uuid": "GPU-h", "gpu_model": "NVIDIA H100 80GB HBM3",
                                  "method": "measured", "source": "nvml_energy_counter"},
        catalog.CPU_ENERGY.name: {"socket": "0", "domain": "package", "method": "measured", "source": "rapl"},
        catalog.WORKLOAD_ENERGY.name: {"component": "gpu", "namespace": "ml", "pod": "train-0", "container": "main",
                                       "workload": "deployment/train", "share": catalog.SHARE_WORKLOAD},
    }
    return History(end - timedelta(hours=1), 1, [
        Series(catalog.lookup(name), {**node, **extra}, HISTORY_WATTS[name], until=end)
        for name, extra in labels.items()])


@dataclass
class Live:
    prom: PrometheusServer
    started: float   # Prometheus ready
    replaced: float  # node-b's exporter replaced: the old one stopped, a new one at another address started
    hour_end: float  # the end of node-h's hour


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("hourly-live")
    shipped_text = render()[HOURLY_ENERGY_FILE]
    (root / "shipped.yaml").write_text(shipped_text)
    promtool_check(root / "shipped.yaml")
    fast = yaml.safe_load(shipped_text)
    fast["groups"][0]["interval"] = "1s"
    (root / "shipped-1s.yaml").write_text(yaml.safe_dump(fast, sort_keys=False))
    (root / "scaled.yaml").write_text(scaled(shipped_text))
    promtool_check(root / "scaled.yaml")

    def node(name: str, label: str, gpus: int, port: int = 0) -> FakeNode:
        (root / name).mkdir()
        return start_fake_node(root / name, gpus=gpus, interval=0.1, node=label, pod_root=root / f"{name}-cgroups",
                               port=port)

    nodes = [node("a", "node-a", 2), node("b1", NODE_B, 1)]
    b2_port = free_port()
    targets = [f"127.0.0.1:{nodes[0].server.port}", f"127.0.0.1:{nodes[1].server.port}", f"127.0.0.1:{b2_port}"]
    try:
        prom = PrometheusServer(targets, scrape_interval=SCRAPE,
                                rule_files=[root / "shipped-1s.yaml", root / "scaled.yaml"])
        hour_end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        last_hour(hour_end).write_blocks(PROMTOOL, prom.dir / "data")
        with prom:
            started = time.time()
            gpu = record(hourly_energy.RECORDED[catalog.GPU_ENERGY.name])
            prom.wait_for(gpu, timeout=20, min_results=3)
            until = time.time() + (WINDOWS + 1) * WINDOW_S  # WINDOWS windows more, one for the reader's read
            # A rolling update of node-b's exporter in the middle of the next window: the old pod stops, the
            # new one (another address, its counters from 0, as without a state file) starts at once.
            time.sleep((math.floor(time.time() / WINDOW_S) + 1.5) * WINDOW_S - time.time())
            nodes[1].stop()
            nodes.append(node("b2", NODE_B, 1, port=b2_port))
            replaced = time.time()
            time.sleep(max(0.0, until - time.time()))
            yield Live(prom, started, replaced, hour_end.timestamp())
    finally:
        for n in nodes:
            n.stop()


def _labels(series: dict[str, Any]) -> Labels:
    return tuple(sorted((k, v) for k, v in series["metric"].items() if k != "__name__"))


def _recorded(prom: PrometheusServer, name: str, now: float) -> dict[Labels, list[tuple[float, float]]]:
    """Every recorded sample of the last minute, per label set: [(timestamp, value)]."""
    out = {}
    for series in prom.query(f"{record(RECORDS[name])}[60s]", now):
        out[_labels(series)] = [(float(ts), float(v)) for ts, v in series["values"]]
    return out


def _window_end(ts: float) -> float:
    return math.floor(ts / WINDOW_S) * WINDOW_S


def _bounds(prom: PrometheusServer, name: str, end: float) -> dict[Labels, tuple[float, float]]:
    """Per label set the rule keeps: what increase() may give from the raw samples of [end - window, end]."""
    inner: dict[Labels, tuple[float, float]] = {}
    for series in prom.query(f"{counter_selector(RAW[name])}[{WINDOW_S}s]", end):
        points = [(round(float(ts) * 1000), float(v)) for ts, v in series["values"]]  # ms: exact differences
        if len(points) < 2:
            continue
        values = [v for _, v in points]
        assert values == sorted(values), f"counter went down within a window: {series['metric']}"
        delta, span_ms = values[-1] - values[0], points[-1][0] - points[0][0]
        key = tuple(sorted((k, v) for k, v in series["metric"].items() if k in INNER_BY[name]))
        assert key not in inner, f"two raw series for one label set of one target: {key}"
        inner[key] = (delta, delta * (WINDOW_S * 1000 / span_ms))
    outer: dict[Labels, tuple[float, float]] = {}
    for key, (low, high) in inner.items():
        kept = tuple(kv for kv in key if kv[0] in BY[name])
        old = outer.get(kept, (0.0, 0.0))
        outer[kept] = (old[0] + low, old[1] + high)
    return outer


def test_shipped_group_records_the_last_whole_hour_live(live: Live) -> None:
    prom = live.prom
    groups = {g["name"]: g for g in prom.api("rules", type="record")["groups"]}
    for name in (SHIPPED_GROUP, SCALED_GROUP):
        group = groups[name]
        assert [r["name"] for r in group["rules"]] == [
            (record(RECORDS[m]) if name == SCALED_GROUP else RECORDS[m]) for m in RAW]
        for rule in group["rules"]:
            assert rule["health"] == "ok" and not rule.get("lastError"), rule
    now = time.time()
    for name, rec in RECORDS.items():
        got = prom.query(f"{rec}[60s]", now)
        by_node: dict[str, list[tuple[float, float]]] = {}
        raw: dict[float, dict[Labels, float]] = {}
        for series in got:
            for ts, value in series["values"]:
                # every evaluation records the last whole hour: exactly what the raw query gives at its end
                hour = math.floor(float(ts) / 3600) * 3600
                if hour not in raw:
                    raw[hour] = {_labels(s): float(s["value"][1]) for s in prom.query(RAW[name], hour)}
                assert float(value) == raw[hour][_labels(series)], (rec, series["metric"], ts, value)
            by_node.setdefault(series["metric"]["node"], []).extend(
                (float(ts), float(v)) for ts, v in series["values"])
        if now >= live.hour_end + 3600:
            continue  # the hour turned during the test: the records above were checked, node-h's hour is done
        # node-h: its whole hour, the same value at every evaluation (at least the few of this test)
        points = by_node.pop(NODE_H)
        assert len(points) >= 3 and {v for _, v in points} == {3600 * HISTORY_WATTS[name]}, (rec, points)
        # the live exporters have no whole hour yet: nothing recorded for them
        assert not by_node, (rec, sorted(by_node))
        # the aggregator's read at the next hour's end finds it (the last of this hour's evaluations)
        read = prom.query(READERS[name], live.hour_end + 3600)
        assert [float(r["value"][1]) for r in read if r["metric"]["node"] == NODE_H] == [3600 * HISTORY_WATTS[name]]


def test_live_rules(live: Live) -> None:
    """The scaled group's records against the raw counters, window by window.

    Prometheus 2.42 evaluates a group at ``now`` with what is appended by then; a scrape is stamped
    when it starts and appended when its answer is parsed. An evaluation within ``SETTLE_S`` of a
    window's end may miss the last scrape of the window (then its value is a slightly different
    extrapolation); the exact comparison takes the evaluations later in the window. An hourly group
    has the same race only if its offset within the hour is shorter than one scrape's answer time
    (milliseconds for the exporter's cached page), and then its record lacks the hour's last sample.
    """
    prom = live.prom
    now = time.time()
    exact_checked = 0
    for name in RAW:
        recorded = _recorded(prom, name, now)
        assert recorded, f"nothing recorded for {name}"
        by_window: dict[float, dict[Labels, list[tuple[float, float]]]] = {}
        for labels, points in recorded.items():
            # exactly the labels the reader maps to row fields, nothing of the scrape target or the raw series
            share = dict(labels).get("share", "")
            assert {k for k, _ in labels} == EXPECTED_LABELS.get((name, share), EXPECTED_LABELS[name, ""]), labels
            for ts, value in points:
                assert math.isfinite(value) and value >= 0, (labels, ts, value)
                by_window.setdefault(_window_end(ts), {}).setdefault(labels, []).append((ts, value))
        offsets = {round(ts * 1000) % EVAL_MS for points in recorded.values() for ts, _ in points}
        assert len(offsets) == 1, f"one evaluation offset per group, got {offsets}"
        windows = sorted(by_window)[1:-1]   # the first may predate data; the last may be recorded once only
        assert len(windows) >= WINDOWS - 1, windows
        for end in windows:
            raw = {_labels(s): float(s["value"][1]) for s in prom.query(at_window(RAW[name]), end)}
            bounds = _bounds(prom, name, end)
            settled = {labels: [v for ts, v in points if ts - end >= SETTLE_S]
                       for labels, points in by_window[end].items()}
            assert set(settled) == set(raw), f"{name} at {end}: recorded {set(settled)} raw {set(raw)}"
            for labels, values in settled.items():
                assert len(set(values)) <= 1, f"{name} {labels}: one window recorded as {values}"
                for value in values:
                    assert value == raw[labels], (name, labels, end, value, raw[labels])
                    exact_checked += 1
                low, high = bounds[labels]
                assert low * (1 - 1e-9) <= raw[labels] <= high * (1 + 1e-9), (name, labels, low, raw[labels], high)
            _check_reader(prom, name, end, {labels: raw[labels] for labels in settled})
            _check_row_fields(prom, name, end, raw)
    assert exact_checked >= 3 * (WINDOWS - 1)


def _check_reader(prom: PrometheusServer, name: str, end: float, expected: dict[Any, float]) -> None:
    """The aggregator's read of the recorded series, shifted by one window as it is shifted by one hour."""
    reader = READERS[name].replace(RECORDS[name], record(RECORDS[name]))
    reader = reader.replace("[1h] offset 1ms", f"[{WINDOW_S}s] offset 1ms")
    assert reader != READERS[name] and "1h" not in reader, reader
    read = prom.api("query_range", query=reader, start=end + WINDOW_S, end=end + WINDOW_S, step=WINDOW_S)["result"]
    got = {_labels(s): float(s["values"][0][1]) for s in read}
    assert got == expected, f"{name}: the reader at {end + WINDOW_S} read {got}, the window ending {end} is {expected}"


def _check_row_fields(prom: PrometheusServer, name: str, end: float, raw: dict[Any, float]) -> None:
    """The reader maps recorded labels to the same row fields as the raw series', none empty."""
    if name == catalog.WORKLOAD_ENERGY.name:
        rows = {workload_fields_from_labels(dict(labels)) for labels in raw}
        assert None not in rows
        workloads = {r for r in rows if r is not None and r[-1] == catalog.SHARE_WORKLOAD}
        assert {(r[3], r[4], r[5]) for r in workloads} >= {("gpu", FakePod.NAMESPACE, FakePod.WORKLOAD),
                                                         ("cpu", FakePod.NAMESPACE, FakePod.WORKLOAD)}
        return
    metric = catalog.lookup(name)
    fields = {energy_fields_from_labels(metric, dict(labels)) for labels in raw}
    # the window's series only: an instant query would also find node-h's up to 5 minutes after its hour
    raw_series = [r for r in prom.query(f"{counter_selector(RAW[name])}[{WINDOW_S}s]", end) if len(r["values"]) >= 2]
    assert fields == {energy_fields_from_labels(metric, s["metric"]) for s in raw_series}
    for f in fields:
        assert f is not None and all(f[i] for i in (0, 1, 2, 3, 4, 5, 7)), f
        if metric is catalog.GPU_ENERGY:
            assert f[6], f   # the board model


def test_exporter_replaced_within_the_window_counts_both_parts(live: Live) -> None:
    """Regression: node-b's exporter replaced in mid-window (a rolling update; the new pod has another address).

    Each GPU then has two series in the window, the old pod's until it stopped and the new one's after;
    the rule took the ``max`` over all series of a device (meant for an HA pair's copies), which kept
    the larger part only: about half the window's energy. Per target (``instance``) it is now summed;
    copies of one target are still counted once (tests/aggregator/ingest/test_ha_replicas.py).
    """
    prom, end = live.prom, _window_end(live.replaced) + WINDOW_S
    gpu = catalog.GPU_ENERGY.name
    node_b = narrowed(counter_selector(RAW[gpu]), f'node="{NODE_B}"')
    parts = prom.query(f"{node_b}[{WINDOW_S}s]", end)
    assert len({s["metric"]["instance"] for s in parts}) == 2, parts  # both pods scraped within the window
    lows = [float(s["values"][-1][1]) - float(s["values"][0][1]) for s in parts if len(s["values"]) >= 2]
    assert len(lows) == 2, parts
    recorded = [v for labels, points in _recorded(prom, gpu, time.time()).items() if dict(labels)["node"] == NODE_B
                for ts, v in points if end + SETTLE_S <= ts < end + WINDOW_S]
    assert recorded, "node-b's window with the replacement was not recorded"
    # what the former rule gave: the larger part, extrapolated
    former = prom.query(f"max by ({', '.join(BY[gpu])}) "
                        f"(increase({node_b}[{WINDOW_S}s]))", end)
    for value in recorded:
        assert value >= sum(lows) * (1 - 1e-9), (value, lows)   # both parts, not the larger one
        assert value > float(former[0]["value"][1]), (value, former)
