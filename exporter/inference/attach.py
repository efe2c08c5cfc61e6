"""Wiring the inference collector into a running exporter (``--inference-config FILE``)."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from wattfleet.exporter.inference.config import (
    EngineConfig,
    InferenceConfigError,
    discover_config_path,
    load_inference_config,
)
from wattfleet.exporter.inference.scraper import fetch_metrics
from wattfleet.exporter.inference.sensor import EnergySource, InferenceSensor
from wattfleet.exporter.sampler import Sampler

log = logging.getLogger(__name__)


def nvml_energy_source(sampler: Sampler) -> EnergySource | None:
    """``energy_by_gpu`` of the sampler's NVML collector, or None on a node without one."""
    for sensor in sampler.sensors:
        if sensor.name == "nvml" and hasattr(sensor, "energy_by_gpu"):
            return sensor.energy_by_gpu
    return None


def nvml_uuid_index(sampler: Sampler) -> dict[str, str]:
    """GPU UUID -> NVML index of the GPUs the sampler's NVML collector opened."""
    for sensor in sampler.sensors:
        if sensor.name == "nvml":
            return {str(g.uuid): str(g.index) for g in getattr(sensor, "gpus", ())}
    return {}


def resolve_gpu_uuids(engines: list[EngineConfig], uuid_index: Mapping[str, str],
                      source: str) -> list[EngineConfig]:
    """Config GPUs given as ``GPU-<uuid>`` -> NVML indices, the ``gpu`` label every GPU series carries.

    An unknown UUID is a config error: attributing an engine to the wrong (or
    no) GPU would be silent, so the exporter refuses to start instead.
    """
    out, problems = [], []
    for i, e in enumerate(engines):
        gpus = []
        for g in e.gpus:
            if not g.startswith("GPU-"):
                gpus.append(g)
            elif g in uuid_index:
                gpus.append(uuid_index[g])
            else:
                known = ", ".join(sorted(uuid_index)) or "none (no NVML)"
                problems.append(f"{source}: engine {i} ({e.url}): GPU {g} is not on this node (NVML sees: {known})")
        out.append(dataclasses.replace(e, gpus=tuple(gpus)))
    if problems:
        raise InferenceConfigError(problems)
    return out


def config_path(named: str | Path | None, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The engine list to load: the one named on the command line, else a discovered local one."""
    if named:
        return Path(named)
    found = discover_config_path(environ)
    if found is not None:
        log.info("inference engines from %s (discovered)", found)
    return found


def attach_inference(sampler: Sampler, path: str | Path,
                     fetch: Callable[[str, float], str] = fetch_metrics) -> InferenceSensor:
    """Load the engine list, add the ``inference`` collector and hook phase attribution into each sample.

    The collector goes after NVML in ``sampler.sensors``: each tick reads the
    GPUs first, then the engines, and the observer records the GPU energy.

    Raises :class:`~wattfleet.exporter.inference.config.InferenceConfigError`
    (file, line and field) before anything starts.
    """
    engines = resolve_gpu_uuids(load_inference_config(path), nvml_uuid_index(sampler), str(path))
    # Wait up to a tenth of the period (at most 0.1 s) for engines, so tokens line up with the GPU readings.
    return attach_engines(sampler, engines, fetch, sync_wait=min(0.1, sampler.interval / 10))


def attach_engines(sampler: Sampler, engines: list[EngineConfig], fetch: Callable[[str, float], str] = fetch_metrics,
                   sync_wait: float = 0.1) -> InferenceSensor:
    """Add the ``inference`` collector for ``engines`` (validated already) to ``sampler``, with phase attribution
    against its NVML collector's energy; the simulator calls this with its engines' in-process pages."""
    energy = nvml_energy_source(sampler)
    if energy is None:
        log.warning("no NVML collector: inference counters are exported, phase energy is not")
    sensor = InferenceSensor(engines, energy_source=energy, fetch=fetch, sync_wait=sync_wait)
    sampler.sensors.append(sensor)
    sampler.add_observer(sensor.observe)
    return sensor
