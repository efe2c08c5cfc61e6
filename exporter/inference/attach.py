"""Wiring the inference collector into a running exporter (``--inference-config FILE``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from ..sampler import Sampler
from .config import load_inference_config
from .scraper import fetch_metrics
from .sensor import EnergySource, InferenceSensor

log = logging.getLogger(__name__)


def nvml_energy_source(sampler: Sampler) -> EnergySource | None:
    """``energy_by_gpu`` of the sampler's NVML collector, or None on a node without one."""
    for sensor in sampler.sensors:
        if sensor.name == "nvml" and hasattr(sensor, "energy_by_gpu"):
            return sensor.energy_by_gpu  # type: ignore[no-any-return]
    return None


def attach_inference(sampler: Sampler, path: str | Path,
                     fetch: Callable[[str, float], str] = fetch_metrics) -> InferenceSensor:
    """Load the engine list, add the ``inference`` collector and hook phase attribution into each sample.

    The collector goes after NVML in ``sampler.sensors``: each tick reads the
    GPUs first, then the engines, and the observer records the GPU energy.

    Raises :class:`~wattfleet.exporter.inference.config.InferenceConfigError`
    (file, line and field) before anything starts.
    """
    engines = load_inference_config(path)
    energy = nvml_energy_source(sampler)
    if energy is None:
        log.warning("no NVML collector: inference counters are exported, phase energy is not")
    # Wait up to a tenth of the period (at most 0.1 s) for engines, so tokens line up with the GPU readings.
    sensor = InferenceSensor(engines, energy_source=energy, fetch=fetch, sync_wait=min(0.1, sampler.interval / 10))
    sampler.sensors.append(sensor)
    sampler.add_observer(sensor.observe)
    return sensor
