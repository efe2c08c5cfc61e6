"""The one interface every sensor implements.

A sensor reads hardware (or an estimate) and returns plain readings; it never
talks Prometheus. The sampler calls :meth:`Sensor.sample` on its own thread,
so a slow or failing sensor affects only its own readings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Sample:
    """One value of one catalog metric: ``metric`` is a catalog ``Metric.name``."""

    metric: str
    labels: dict[str, str]
    value: float


@dataclass
class SensorResult:
    """What one call of :meth:`Sensor.sample` produced.

    ``errors`` holds one short reason per failure (``"permission_denied"``,
    ``"gpu_lost"``...); a sensor with errors may still have produced samples
    for its other devices. ``corrections`` maps (sensor, device) to the
    counter's cumulative (wraps, resets). ``exposition``: whole metric families
    the sensor rendered itself (text format, HELP and TYPE included), appended
    to the snapshot as they are; for families of hundreds of series whose
    label sets rarely change (energy by workload), where rendering each
    sample through prometheus-client every second would cost more than
    everything the sensor does.
    """

    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    corrections: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    exposition: bytes = b""

    def add(self, metric: str, value: float, **labels: str) -> None:
        self.samples.append(Sample(metric, labels, float(value)))


class SensorUnavailable(Exception):
    """Raised by a sensor's constructor when its hardware or library is absent."""


class Sensor(Protocol):
    """A source of readings, named for the ``collector`` label."""

    name: str

    def sample(self, now: float) -> SensorResult:
        """Read the hardware once at monotonic time ``now``."""
        ...

    def close(self) -> None:
        ...
