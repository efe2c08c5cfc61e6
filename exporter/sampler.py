"""The sampling loop: reads every sensor on a fixed period and keeps a rendered snapshot.

A scrape only copies the last snapshot's bytes, so it never touches hardware
and costs the same however many GPUs the node has; the exporter's counters
advance at the sampling period, not the scrape period.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections import defaultdict
from collections.abc import Callable

from prometheus_client.core import Metric as PromMetric

from wattfleet.core import catalog
from wattfleet.core.exposition import Snapshot, render_families
from wattfleet.exporter.sensors.base import Sample, Sensor, SensorResult
from wattfleet.exporter.state import StateFile

log = logging.getLogger(__name__)


class Sampler:
    """Runs sensors every ``interval`` seconds and renders their readings."""

    def __init__(self, sensors: list[Sensor], const_labels: dict[str, str] | None = None,
                 interval: float = 1.0, absent: dict[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 version: str = "0.0.0", state: StateFile | None = None) -> None:
        self.sensors = sensors
        self.const_labels = {k: const_labels.get(k, "") for k in catalog.CONST_LABELS} if const_labels \
            else {k: "" for k in catalog.CONST_LABELS}
        self.interval = interval
        self.absent = dict(absent or {})
        self.clock, self.wall = clock, wall
        self.version = version
        self.errors: dict[tuple[str, str], int] = defaultdict(int)
        self.corrections: dict[tuple[str, str], tuple[int, int]] = {}
        self.last_results: dict[str, SensorResult] = {}
        self._snapshot: Snapshot | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observers: list[Callable[[dict[str, SensorResult], float], None]] = []
        self.state = state
        if state is not None:  # before the first sample, so that it already continues the saved counters
            state.restore(sensors, self.clock(), self.wall())

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def add_observer(self, fn: Callable[[dict[str, SensorResult], float], None]) -> None:
        """Call ``fn(results, now)`` after each sample (phase attribution hooks in here)."""
        self._observers.append(fn)

    def sample_once(self) -> Snapshot:
        """Read every sensor once and publish a new snapshot."""
        now = self.clock()
        results: dict[str, SensorResult] = {}
        durations: dict[str, float] = {}
        up: dict[str, int] = {}
        for sensor in self.sensors:
            started = time.perf_counter()
            try:
                result = sensor.sample(now)
            except Exception as exc:  # a broken sensor must not stop the others
                log.exception("collector %s failed", sensor.name)
                result = SensorResult(errors=[type(exc).__name__.lower()])
            durations[sensor.name] = time.perf_counter() - started
            for reason in result.errors:
                self.errors[(sensor.name, reason)] += 1
            self.corrections.update(result.corrections)
            up[sensor.name] = 0 if result.errors else 1
            results[sensor.name] = result
        self.last_results = results
        for observer in self._observers:
            try:
                observer(results, now)
            except Exception:
                log.exception("sample observer failed")
        if self.state is not None:
            # Saved before the snapshot is published: no scrape ever sees a total the file lacks,
            # so a restart cannot make a counter go down.
            self.state.save(self.sensors, now, self.wall())
        snapshot = Snapshot(self._render(results, durations, up), self.wall())
        self._snapshot = snapshot
        return snapshot

    def _render(self, results: dict[str, SensorResult], durations: dict[str, float],
                up: dict[str, int]) -> bytes:
        samples: list[Sample] = [s for r in results.values() for s in r.samples]
        for name, value in up.items():
            samples.append(Sample(catalog.COLLECTOR_UP.name, {"collector": name}, value))
            samples.append(Sample(catalog.COLLECTOR_ENABLED.name, {"collector": name}, 1))
            samples.append(Sample(catalog.SAMPLE_DURATION.name, {"collector": name}, durations[name]))
        for name in self.absent:
            samples.append(Sample(catalog.COLLECTOR_ENABLED.name, {"collector": name}, 0))
        for (collector, reason), count in sorted(self.errors.items()):
            samples.append(Sample(catalog.COLLECTOR_ERRORS.name, {"collector": collector, "reason": reason}, count))
        for (sensor, device), (wraps, resets) in sorted(self.corrections.items()):
            samples.append(Sample(catalog.COUNTER_WRAPS.name, {"sensor": sensor, "device": device}, wraps))
            samples.append(Sample(catalog.COUNTER_RESETS.name, {"sensor": sensor, "device": device}, resets))
        samples.append(Sample(catalog.LAST_SAMPLE.name, {}, self.wall()))
        samples.append(Sample(catalog.BUILD_INFO.name, {"version": self.version,
                                                         "python_version": platform.python_version()}, 1))
        return render_families(self._families(samples))

    def _families(self, samples: list[Sample]) -> list[PromMetric]:
        by_name: dict[str, list[Sample]] = defaultdict(list)
        for s in samples:
            by_name[s.metric].append(s)
        families = []
        for name, group in by_name.items():
            metric = catalog.lookup(name)
            family = PromMetric(metric.name, metric.help, metric.kind)
            for s in group:
                labels = {**self.const_labels, **s.labels} if metric.const_labels else dict(s.labels)
                family.add_sample(metric.series, labels, s.value)
            families.append(family)
        return families

    # --- background loop -------------------------------------------------
    def start(self) -> None:
        self.sample_once()
        self._thread = threading.Thread(target=self._run, name="wattfleet-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = self.clock()
        while not self._stop.is_set():
            deadline += self.interval
            delay = deadline - self.clock()
            if delay < 0:  # fell behind (slow sensor): skip missed ticks, keep the period
                deadline = self.clock()
                delay = 0
            if self._stop.wait(delay):
                break
            self.sample_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for sensor in self.sensors:
            try:
                sensor.close()
            except Exception:
                log.exception("closing collector %s", sensor.name)
