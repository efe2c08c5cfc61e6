"""The sampling loop: reads every sensor on a fixed period and keeps a rendered snapshot.

A scrape only copies the last snapshot's bytes, so it never touches hardware
and costs the same however many GPUs the node has; the exporter's counters
advance at the sampling period, not the scrape period.

Each collector runs on its own thread under a deadline. An NVML call can
block for minutes when a GPU falls off the bus; such a collector is reported
down (``collector_up`` 0, its ``*_up`` series 0, ``errors_total{reason="timeout"}``)
with its counters held at their last value, while the others keep sampling.
When it answers again, its cumulative hardware counters carry the energy of
the outage, which is also counted apart (``energy_recovered_joules_total``).
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures

from prometheus_client.core import Metric as PromMetric

from wattfleet.core import catalog
from wattfleet.core.exposition import Snapshot, render_families
from wattfleet.exporter.sensors.base import Sample, Sensor, SensorResult
from wattfleet.exporter.state import StateFile

log = logging.getLogger(__name__)

_HARDWARE_ENERGY = {catalog.GPU_ENERGY.name, catalog.CPU_ENERGY.name}


class Sampler:
    """Runs sensors every ``interval`` seconds and renders their readings."""

    def __init__(self, sensors: list[Sensor], const_labels: dict[str, str] | None = None,
                 interval: float = 1.0, absent: dict[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 version: str = "0.0.0", state: StateFile | None = None, timeout: float | None = None) -> None:
        """``timeout``: seconds a collector may take per sample (default: twice the interval, at least 2 s)."""
        self.sensors = sensors
        self.const_labels = {k: const_labels.get(k, "") for k in catalog.CONST_LABELS} if const_labels \
            else {k: "" for k in catalog.CONST_LABELS}
        self.interval = interval
        self.timeout = timeout if timeout is not None else max(2.0, 2 * interval)
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
        self._workers: dict[str, ThreadPoolExecutor] = {}  # one thread per collector, made on first use
        self._stuck: dict[str, Future[tuple[SensorResult, float]]] = {}
        self._last_good: dict[str, SensorResult] = {}
        self.recovered_joules: dict[str, float] = defaultdict(float)
        self.state = state
        if state is not None:  # before the first sample, so that it already continues the saved counters
            state.restore(sensors, self.clock(), self.wall())
            if state.restore_failed:  # visible: collector_errors_total, as a failed write is
                self.errors[("state_file", "restore_failed")] += 1

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def readiness(self) -> tuple[bool, str]:
        """Ready while the served snapshot is fresh: a stalled loop must fail the probe, not serve old bytes."""
        snapshot = self._snapshot
        if snapshot is None:
            return False, "no sample taken yet"
        age = self.wall() - snapshot.wall_time
        stale_after = 3 * self.interval + self.timeout
        if age > stale_after:
            return False, f"last sample {age:.0f} s ago (stale after {stale_after:.0f} s)"
        return True, ""

    def add_observer(self, fn: Callable[[dict[str, SensorResult], float], None]) -> None:
        """Call ``fn(results, now)`` after each sample (phase attribution hooks in here)."""
        self._observers.append(fn)

    def _call(self, sensor: Sensor, now: float) -> tuple[SensorResult, float]:
        started = time.perf_counter()
        try:
            result = sensor.sample(now)
        except Exception as exc:  # a broken sensor must not stop the others
            log.exception("collector %s failed", sensor.name)
            result = SensorResult(errors=[type(exc).__name__.lower()])
        return result, time.perf_counter() - started

    def _timed_out(self, name: str) -> SensorResult:
        """What a collector past its deadline reports: down, counters held, no stale gauges."""
        last = self._last_good.get(name, SensorResult())
        samples = []
        for s in last.samples:
            metric = catalog.lookup(s.metric)
            if metric.name.endswith("_up"):
                samples.append(Sample(s.metric, s.labels, 0.0))
            elif metric.kind in ("counter", "info"):
                samples.append(s)
        return SensorResult(samples=samples, errors=["timeout"], corrections=dict(last.corrections))

    def _recovered(self, name: str, result: SensorResult) -> None:
        """Energy the collector's counters gained across its outage, counted apart for auditing."""
        def joules(r: SensorResult) -> float:
            return sum(s.value for s in r.samples if s.metric in _HARDWARE_ENERGY)
        gained = joules(result) - joules(self._last_good.get(name, SensorResult()))
        if gained > 0:
            self.recovered_joules[name] += gained
        log.warning("collector %s answers again; its counters gained %.1f J meanwhile", name, gained)

    def sample_once(self) -> Snapshot:
        """Read every sensor once (each under the deadline) and publish a new snapshot."""
        now = self.clock()
        results: dict[str, SensorResult] = {}
        durations: dict[str, float] = {}
        up: dict[str, int] = {}
        futures: dict[str, Future[tuple[SensorResult, float]]] = {}
        for sensor in self.sensors:
            stuck = self._stuck.get(sensor.name)
            if stuck is not None and not stuck.done():
                continue  # its thread is still blocked in the hardware: don't queue more calls behind it
            worker = self._workers.get(sensor.name)
            if worker is None:  # sensors may be attached after construction (inference)
                worker = self._workers[sensor.name] = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"wattfleet-{sensor.name}")
            futures[sensor.name] = worker.submit(self._call, sensor, now)
        wait_futures(futures.values(), timeout=self.timeout)
        for sensor in self.sensors:
            future = futures.get(sensor.name)
            if future is not None and future.done():
                result, durations[sensor.name] = future.result()
                if self._stuck.pop(sensor.name, None) is not None:
                    self._recovered(sensor.name, result)
                if not result.errors:
                    self._last_good[sensor.name] = result
            else:
                if future is not None:
                    self._stuck[sensor.name] = future
                    log.warning("collector %s did not answer within %.1f s; reported down", sensor.name, self.timeout)
                result, durations[sensor.name] = self._timed_out(sensor.name), self.timeout
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
            if not self.state.save(self.sensors, now, self.wall()):
                self.errors[("state_file", "write_failed")] += 1  # visible: collector_errors_total
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
        # Every collector's timeout counter exists from its first sample at 0: a counter that first
        # appears at 1 hides that first error from increase(), and the first hang is the one that matters.
        errors = {**{(name, "timeout"): 0 for name in up}, **self.errors}
        for (collector, reason), count in sorted(errors.items()):
            samples.append(Sample(catalog.COLLECTOR_ERRORS.name, {"collector": collector, "reason": reason}, count))
        for name, joules in sorted(self.recovered_joules.items()):
            samples.append(Sample(catalog.ENERGY_RECOVERED.name, {"collector": name}, joules))
        for (sensor, device), (wraps, resets) in sorted(self.corrections.items()):
            samples.append(Sample(catalog.COUNTER_WRAPS.name, {"sensor": sensor, "device": device}, wraps))
            samples.append(Sample(catalog.COUNTER_RESETS.name, {"sensor": sensor, "device": device}, resets))
        samples.append(Sample(catalog.LAST_SAMPLE.name, {}, self.wall()))
        samples.append(Sample(catalog.BUILD_INFO.name, {"version": self.version,
                                                         "python_version": platform.python_version()}, 1))
        return render_families(self._families(samples)) + b"".join(r.exposition for r in results.values())

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
        for worker in self._workers.values():
            worker.shutdown(wait=False, cancel_futures=True)  # a thread stuck in a driver call cannot be joined
