"""Backfill: a simulated fleet's counters over a past span, as an OpenMetrics file with timestamps.

Live scraping can only fill a store as fast as time passes; ``promtool tsdb
create-blocks-from openmetrics`` loads months at once. The same nodes as a
live fleet run on a stepped clock and their counters stream straight to the
file (no text exposition is rendered) in flat memory, and the summary
carries the ground truth to check a store and the aggregator against.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from wattfleet.core import catalog
from wattfleet.sim.config import FleetConfig
from wattfleet.sim.fleet import Fleet
from wattfleet.sim.node import SimNode

BACKFILL_FAMILIES = (catalog.GPU_ENERGY, catalog.CPU_ENERGY, catalog.COLLECTOR_ERRORS)
CORRECTION_FAMILIES = (catalog.COUNTER_WRAPS, catalog.COUNTER_RESETS)


def _escape(value: str) -> str:
    """A label value as the exposition format quotes it (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)


@dataclass
class BackfillSummary:
    """What a backfill wrote, how long it took, and per node (or replica) the ground truth to check it against."""

    start: float
    end: float
    step: float
    steps: int
    nodes: int
    gpus: int
    samples: int
    bytes: int
    seconds: float
    true_gpu_joules: dict[str, float]
    exporter_gpu_joules: dict[str, float]
    true_cpu_joules: dict[str, float]

    @property
    def device_hours(self) -> float:
        """GPU-hours covered: every GPU over the whole span."""
        return self.gpus * (self.end - self.start) / 3600.0


def replica_name(node: str, replica: int) -> str:
    """Replica 0 keeps the simulated node's name; the others are ``<node>-rNNN``."""
    return node if replica == 0 else f"{node}-r{replica:03d}"


def write_backfill(config: FleetConfig, out: str | os.PathLike[str], span: float, step: float,
                   end: float | None = None, corrections: bool = False,
                   progress: Callable[[int, int], None] | None = None, replicas: int = 1) -> BackfillSummary:
    """Step a fleet from ``end - span`` to ``end`` every ``step`` seconds and write its counters.

    Families stay contiguous (OpenMetrics forbids interleaving them), so each
    family streams to its own spool file next to ``out`` and they are joined
    at the end; memory stays flat however long the span.

    ``replicas`` > 1 writes every simulated node's series that many times
    under distinct node names (:func:`replica_name`): a store and an
    aggregator see ``replicas`` times the fleet for the cost of simulating it
    once, which is what lets one machine backfill 10,000 GPUs. Each replica's
    ground truth is its node's.
    """
    if step <= 0 or span < step:
        raise ValueError("backfill needs step > 0 and span >= step")
    if replicas < 1:
        raise ValueError("backfill needs replicas >= 1")
    end = math.floor((end if end is not None else time.time()) / step) * step
    steps = int(span // step)
    cfg = FleetConfig(**{**config.__dict__, "interval": step, "acceleration": 1.0, "start": end - steps * step})
    out = Path(out)
    families = BACKFILL_FAMILIES + (CORRECTION_FAMILIES if corrections else ())
    spools: dict[str, TextIO] = {m.name: open(out.with_name(f"{out.name}.{i}.part"), "w", buffering=1 << 20)
                                 for i, m in enumerate(families)}
    started = time.perf_counter()
    samples = 0
    fleet = Fleet(cfg, render=False)
    try:
        const = {n.name: [[(k, replica_name(v, r) if k == "node" else v)
                           for k, v in ((k, n.sampler.const_labels[k]) for k in catalog.CONST_LABELS)]
                          for r in range(replicas)] for n in fleet.nodes}
        cache: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[str]] = {}
        for i in range(steps + 1):
            if i:
                fleet.step()
            for node in fleet.nodes:
                samples += _write_node(node, spools, cache, const[node.name], corrections)
            if progress is not None and i % 1000 == 0:
                progress(i, steps)

        def per_replica(value: Callable[[SimNode], float]) -> dict[str, float]:
            return {replica_name(n.name, r): value(n) for n in fleet.nodes for r in range(replicas)}

        summary = BackfillSummary(cfg.start or 0.0, fleet.clock.now, step, steps, len(fleet.nodes) * replicas,
                                  sum(len(n.gpus) for n in fleet.nodes) * replicas, samples, 0, 0.0,
                                  per_replica(SimNode.true_gpu_joules), per_replica(SimNode.exporter_gpu_joules),
                                  per_replica(SimNode.true_cpu_joules))
    finally:
        fleet.stop()
        for f in spools.values():
            f.close()
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as dst:
        for i, metric in enumerate(families):
            dst.write(f"# HELP {metric.name} {metric.help}\n# TYPE {metric.name} {metric.kind}\n".encode())
            part = out.with_name(f"{out.name}.{i}.part")
            with open(part, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)
            part.unlink()
        dst.write(b"# EOF\n")
    os.replace(tmp, out)
    summary.bytes = out.stat().st_size
    summary.seconds = time.perf_counter() - started
    return summary


def _replica_labels(labels: tuple[tuple[str, str], ...], replica: int) -> list[tuple[str, str]]:
    """A replica's board is another board: its uuid gets the replica suffix too."""
    return [(k, replica_name(v, replica) if k == "uuid" else v) for k, v in labels]


def _write_node(node: SimNode, spools: dict[str, TextIO], cache: dict[Any, list[str]],
                consts: list[list[tuple[str, str]]], corrections: bool) -> int:
    """Write one node's counters at its (possibly skewed) clock, once per replica in ``consts``."""
    ts = node.clock.now + node.skew
    stamp = f"{ts:.0f}" if ts == int(ts) else f"{ts:.3f}"
    written = 0

    def emit(metric: catalog.Metric, labels: tuple[tuple[str, str], ...], value: float) -> None:
        nonlocal written
        key = (node.name, metric.name, labels)
        prefixes = cache.get(key)
        if prefixes is None:
            prefixes = cache[key] = [f"{metric.series}{{{_labels(c + _replica_labels(labels, r))}}} "
                                     for r, c in enumerate(consts)]
        rest = f"{value!r} {stamp}\n"
        spools[metric.name].write("".join(p + rest for p in prefixes))
        written += len(prefixes)

    for result in node.sampler.last_results.values():
        for s in result.samples:
            if s.metric == catalog.GPU_ENERGY.name:
                emit(catalog.GPU_ENERGY, tuple(s.labels.items()), s.value)
            elif s.metric == catalog.CPU_ENERGY.name:
                emit(catalog.CPU_ENERGY, tuple(s.labels.items()), s.value)
    for (collector, reason), count in node.sampler.errors.items():
        emit(catalog.COLLECTOR_ERRORS, (("collector", collector), ("reason", reason)), float(count))
    if corrections:
        for (sensor, device), (wraps, resets) in node.sampler.corrections.items():
            labels = (("sensor", sensor), ("device", device))
            emit(catalog.COUNTER_WRAPS, labels, float(wraps))
            emit(catalog.COUNTER_RESETS, labels, float(resets))
    return written
