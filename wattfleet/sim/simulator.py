"""``wattfleet simulate``: a fleet of simulated nodes served from one process.

Each simulated node is a real :class:`~wattfleet.exporter.sampler.Sampler`
with its own node/cluster/site labels over the real NVML and RAPL sensors,
which read :mod:`~wattfleet.sim.fake_nvml` boards and a
:mod:`~wattfleet.sim.fake_powercap` tree, so Prometheus scrapes exactly
what a fleet of exporters would publish. To scale to hundreds of targets on a
couple of cores, one thread steps every node on a shared simulated clock
(instead of a sampler thread per node), fake RAPL files are written only when
a node samples, and one HTTP server answers every node at
``/nodes/<name>/metrics`` (``--serve ports`` gives each node its own
:class:`~wattfleet.core.http.MetricsServer` instead).

Simulated time can run ``--acceleration`` times faster than real time; GPU
power follows an hourly workload trace plus inference bursts
(:mod:`~wattfleet.sim.load`). Faults (sensor errors, lost GPUs,
RAPL wrap storms, exporter restarts, clock skew) are scheduled on simulated
time. ``--backfill-openmetrics`` runs the same nodes on a stepped clock and
streams their counters, with timestamps, to an OpenMetrics file for
``promtool tsdb create-blocks-from openmetrics``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TextIO

from wattfleet import __version__

from wattfleet.core import catalog
from wattfleet.sim.fake_nvml import FakeGpu, FakeNvml
from wattfleet.sim.fake_powercap import FakePowercap
from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.sensors.base import Sensor
from wattfleet.exporter.sensors.host import HostSensor
from wattfleet.exporter.sensors.nvml import NvmlSensor
from wattfleet.exporter.sensors.rapl import RaplSensor
from wattfleet.core.http import JSON, NOT_FOUND, HttpServer, MetricsServer, Request, Response, Routes, snapshot_routes
from wattfleet.core.signals import wait_for_stop_signal
from wattfleet.sim.load import (CpuShape, GpuModel, GpuWorkload, TraceLoad, default_trace_path, diurnal_trace,
                             gpu_model, load_trace)
from wattfleet.exporter.state import StateFile
from wattfleet.core.webconfig import WebConfig

log = logging.getLogger(__name__)

NVML_ERROR_UNKNOWN = 999
FAULT_KINDS = ("sensor_error", "gpu_lost", "rapl_wrap_storm", "exporter_restart", "clock_skew")
DEFAULT_SITES = (("dc-ciso", "CISO"), ("dc-bpat", "BPAT"), ("dc-miso", "MISO"))
MAX_PACKAGE_WATTS = CpuShape().package_watts(1.0)


# --- configuration -----------------------------------------------------------
def parse_duration(text: str, what: str = "duration") -> float:
    """``500ms``, ``60s``, ``15m``, ``6h``, ``30d`` or plain seconds -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*", str(text))
    if not m:
        raise ValueError(f"{what} {text!r} must look like 500ms, 60s, 15m, 6h, 30d or a number of seconds")
    unit = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    return float(m.group(1)) * unit


def parse_time(text: str) -> float:
    """Unix seconds or an ISO 8601 time (UTC when no offset is given)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time {text!r} must be unix seconds or ISO 8601 like 2022-07-01T00:00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


@dataclass
class Fault:
    """One injected fault on one node, from simulated second ``at`` for ``duration`` seconds.

    ``node`` is a node name or index. ``sensor`` (``nvml``/``rapl``) applies to
    ``sensor_error``; ``gpu`` to ``sensor_error``/``gpu_lost`` (None: every GPU);
    ``seconds`` is the wall-clock offset of ``clock_skew``; ``range_joules``
    the RAPL wrap range of ``rapl_wrap_storm`` (None: about 2.5 sample steps at full load).
    ``exporter_restart`` happens once at ``at``; with ``state=file`` the node's exporter
    runs with a ``--state-file`` (in the fleet's workdir) and the restart continues its counters;
    ``rapl_wrap_storm`` lasts the whole run.
    """

    kind: str
    node: str
    at: float = 0.0
    duration: float = math.inf
    gpu: int | None = None
    sensor: str = "nvml"
    seconds: float = 0.0
    range_joules: float | None = None
    state: bool = False

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} unknown; one of {', '.join(FAULT_KINDS)}")
        if self.sensor not in ("nvml", "rapl"):
            raise ValueError(f"fault field 'sensor' must be nvml or rapl, got {self.sensor!r}")
        if self.at < 0 or self.duration <= 0:
            raise ValueError("fault fields 'at' must be >= 0 and 'for' > 0")

    def active(self, elapsed: float) -> bool:
        return self.at <= elapsed < self.at + self.duration

    @classmethod
    def parse(cls, spec: str) -> "Fault":
        """``KIND:node=N[,gpu=I][,sensor=nvml|rapl][,at=DUR][,for=DUR][,seconds=S][,range_joules=J]``."""
        kind, _, rest = spec.partition(":")
        kwargs: dict[str, Any] = {"kind": kind.strip()}
        for item in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq:
                raise ValueError(f"fault {spec!r}: field {item!r} must be key=value")
            try:
                if key == "node":
                    kwargs["node"] = value.strip()
                elif key == "gpu":
                    kwargs["gpu"] = int(value)
                elif key == "sensor":
                    kwargs["sensor"] = value.strip()
                elif key == "at":
                    kwargs["at"] = parse_duration(value, "fault field 'at'")
                elif key == "for":
                    kwargs["duration"] = parse_duration(value, "fault field 'for'")
                elif key in ("seconds", "range_joules"):
                    kwargs[key] = float(value)
                elif key == "state":
                    if value.strip() not in ("file", "none"):
                        raise ValueError(f"field 'state' must be file or none, got {value.strip()!r}")
                    kwargs["state"] = value.strip() == "file"
                else:
                    raise ValueError(f"unknown field {key!r} (node, gpu, sensor, at, for, seconds, range_joules, "
                                     "state)")
            except ValueError as exc:
                raise ValueError(f"fault {spec!r}: {exc}") from None
        if "node" not in kwargs:
            raise ValueError(f"fault {spec!r}: field 'node' is required")
        try:
            return cls(**kwargs)
        except ValueError as exc:
            raise ValueError(f"fault {spec!r}: {exc}") from None


@dataclass
class FleetConfig:
    """Everything that shapes a simulated fleet; ``step_seconds`` is simulated time per tick."""

    nodes: int = 4
    gpus_per_node: int = 8
    gpu_models: tuple[str, ...] = ("h100",)
    sites: tuple[tuple[str, str], ...] = DEFAULT_SITES
    cluster: str = "sim"
    interval: float = 1.0
    acceleration: float = 1.0
    start: float | None = None
    seed: int = 0
    trace: Path | None = None
    sockets: int = 2
    estimated_cpu_every: int = 0
    node_prefix: str = "sim-"
    faults: list[Fault] = field(default_factory=list)
    workdir: Path | None = None

    @property
    def step_seconds(self) -> float:
        return self.interval * self.acceleration

    def validate(self) -> None:
        if self.nodes < 1 or self.gpus_per_node < 0 or self.sockets < 1:
            raise ValueError("need nodes >= 1, gpus per node >= 0 and sockets >= 1")
        if self.interval <= 0 or self.acceleration <= 0:
            raise ValueError("interval and acceleration must be positive")
        if not self.sites:
            raise ValueError("at least one site is needed")
        for key in self.gpu_models:
            gpu_model(key)


def parse_sites(text: str) -> tuple[tuple[str, str], ...]:
    """``dc-ciso:CISO,dc-miso:MISO`` or bare zones ``CISO,MISO`` (site named dc-<zone>)."""
    sites = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        site, sep, zone = item.partition(":")
        if not sep:
            site, zone = f"dc-{item.lower()}", item
        if not site or not zone:
            raise ValueError(f"site {item!r} must look like NAME:ZONE or ZONE")
        sites.append((site.strip(), zone.strip().upper()))
    if not sites:
        raise ValueError("--sites needs at least one site")
    return tuple(sites)


# --- simulated hardware ------------------------------------------------------
class SimClock:
    """Simulated unix time shared by a fleet's fakes and samplers; moves only at ticks."""

    def __init__(self, start: float) -> None:
        self.start = self.now = start

    def __call__(self) -> float:
        return self.now

    @property
    def elapsed(self) -> float:
        return self.now - self.start


class SimNvml(FakeNvml):
    """FakeNvml that can fail calls on chosen boards with NVML_ERROR_UNKNOWN (a sensor error)."""

    def __init__(self, gpus: list[FakeGpu]) -> None:
        super().__init__(gpus)
        self.failing: set[int] = set()

    def _check(self, gpu: FakeGpu, feature: str | None = None) -> None:
        super()._check(gpu, feature)
        if id(gpu) in self.failing:
            raise self.NVMLError(NVML_ERROR_UNKNOWN)


class _UnrenderedSampler(Sampler):
    """A Sampler that skips the text exposition: backfill reads counters from its results directly."""

    def _render(self, *args: Any) -> bytes:
        return b""


class SimNode:
    """One simulated exporter: fake boards and powercap tree, the real sensors and a Sampler."""

    def __init__(self, index: int, name: str, site: str, zone: str, model: GpuModel, config: FleetConfig,
                 clock: SimClock, trace: Sequence[float], rng: random.Random, sysfs_root: Path | None,
                 faults: list[Fault], render: bool = True, state_path: Path | None = None) -> None:
        self.render = render
        self.state_path = state_path
        self.index, self.name, self.site, self.zone, self.model = index, name, site, zone, model
        self.config, self.clock, self.faults = config, clock, faults
        self.load = TraceLoad(trace, offset_hours=rng.uniform(-2.0, 2.0), scale=rng.uniform(0.8, 1.2))
        self.cpu_shape = CpuShape()
        self.skew = 0.0
        self.restarts = 0
        self._restart_done: set[int] = set()
        self.gpus = [FakeGpu(uuid=f"GPU-sim{index:05d}-{g:04d}-{rng.getrandbits(32):08x}", name=model.nvml_name,
                             power_watts=model.idle_watts, power_limit_watts=model.tdp_watts,
                             memory_total=model.memory_bytes, clock=clock)
                     for g in range(config.gpus_per_node)]
        self.workloads = [GpuWorkload(model, self.load, random.Random(rng.getrandbits(64))) for _ in self.gpus]
        self.nvml = SimNvml(self.gpus)
        self.sysfs_root = sysfs_root
        self.powercap: FakePowercap | None = None
        if sysfs_root is not None:
            storm = [f for f in faults if f.kind == "rapl_wrap_storm"]
            kwargs: dict[str, Any] = {}
            if storm:
                joules = storm[0].range_joules or max(2.5 * MAX_PACKAGE_WATTS * config.step_seconds, 50.0)
                kwargs["max_energy_range_uj"] = int(joules * 1e6)
            self.powercap = FakePowercap(sysfs_root, sockets=config.sockets, subdomains=("dram",),
                                         clock=clock, **kwargs)
        self.cpu_load = self.load.at(clock.now)
        self.sampler = self._new_sampler()
        self._gpu_baseline = [g.true_joules() for g in self.gpus]
        self._cpu_baseline = self._cpu_true_joules()

    # --- exporter ------------------------------------------------------------
    def _new_sampler(self) -> Sampler:
        sensors: list[Sensor] = []
        if self.gpus:
            sensors.append(NvmlSensor(self.nvml))
        if self.powercap is not None:
            sensors.append(RaplSensor(self.sysfs_root or "/sys"))
        cores = 32 * self.config.sockets
        mem = _Memory(total=512 << 30, available=384 << 30)
        sensors.append(HostSensor(estimate=self.powercap is None, cpu_percent=lambda: 100.0 * self.cpu_load,
                                  virtual_memory=lambda: mem, cpu_count=cores))
        cls = Sampler if self.render else _UnrenderedSampler
        # The simulated machine never reboots: one boot id per node.
        state = StateFile(self.state_path, boot_id=f"sim-{self.name}") if self.state_path is not None else None
        return cls(sensors, {"node": self.name, "cluster": self.config.cluster, "site": self.site},
                       interval=self.config.interval, clock=self.clock, wall=lambda: self.clock.now + self.skew,
                       version=__version__, state=state)

    def restart_exporter(self) -> None:
        """The exporter process restarts: new sensors (the hardware keeps counting) and counters from 0,
        or, with ``state_path`` (``--state-file``), counters continued from the state its last sample saved."""
        self.sampler.stop()
        self.sampler = self._new_sampler()
        self.restarts += 1

    # --- one tick --------------------------------------------------------------
    def _apply_faults(self, elapsed: float) -> tuple[bool, bool]:
        """Set fault state for this instant; return (restart now, RAPL read errors now)."""
        restart = rapl_error = False
        failing: set[int] = set()
        lost = [False] * len(self.gpus)
        self.skew = 0.0
        for i, f in enumerate(self.faults):
            if f.kind == "exporter_restart":
                if elapsed >= f.at and i not in self._restart_done:
                    self._restart_done.add(i)
                    restart = True
                continue
            if not f.active(elapsed):
                continue
            targets = range(len(self.gpus)) if f.gpu is None else [f.gpu]
            if f.kind == "gpu_lost":
                for g in targets:
                    lost[g] = True
            elif f.kind == "sensor_error" and f.sensor == "nvml":
                failing.update(id(self.gpus[g]) for g in targets)
            elif f.kind == "sensor_error":
                rapl_error = True
            elif f.kind == "clock_skew":
                self.skew += f.seconds
        for gpu, now_lost in zip(self.gpus, lost):
            if gpu.lost and not now_lost:
                gpu.driver_reload()  # a lost board comes back only after a reset: NVML's counter restarts
            gpu.lost = now_lost
        self.nvml.failing = failing
        return restart, rapl_error

    def tick(self, next_step: float) -> None:
        """Sample at the clock's current time, then set the draw until ``now + next_step``."""
        now = self.clock.now
        restart, rapl_error = self._apply_faults(now - self.clock.start)
        if self.powercap is not None:
            self.powercap.update()
            if rapl_error:
                for zone in self.powercap.zones.values():
                    (zone.path / "energy_uj").write_text("read error\n")
        if restart:
            self.restart_exporter()
        self.sampler.sample_once()
        self._set_draw(now, now + next_step)

    def _set_draw(self, t0: float, t1: float) -> None:
        for gpu, workload in zip(self.gpus, self.workloads):
            watts, util = workload.advance(t0, t1)
            gpu.set_power(watts, util)
            gpu.memory_utilization = util * 0.6
            gpu.temperature = int(30 + 45 * watts / self.model.tdp_watts)
        self.cpu_load = self.load.at(t0)
        if self.powercap is not None:
            for zone in self.powercap.zones.values():
                shape = self.cpu_shape
                zone.power_watts = shape.dram_watts(self.cpu_load) if zone.name == "dram" \
                    else shape.package_watts(self.cpu_load)

    # --- ground truth -----------------------------------------------------------
    def _cpu_true_joules(self) -> float:
        if self.powercap is None:
            return 0.0
        return sum(z.joules for z in self.powercap.zones.values() if z.name.split("-")[0] in catalog.RAPL_IT_DOMAINS)

    def true_gpu_joules(self) -> float:
        """Energy all boards drew since the node's first sample."""
        return sum(g.true_joules() - b for g, b in zip(self.gpus, self._gpu_baseline))

    def true_cpu_joules(self) -> float:
        """RAPL package + dram energy since the first sample (as of the last tick)."""
        return self._cpu_true_joules() - self._cpu_baseline

    def exporter_gpu_joules(self) -> float:
        """What this node's exporter counters say now (sum over GPUs)."""
        result = self.sampler.last_results.get("nvml")
        if result is None:
            return 0.0
        return sum(s.value for s in result.samples if s.metric == catalog.GPU_ENERGY.name)

    def stop(self) -> None:
        self.sampler.stop()


@dataclass
class _Memory:
    total: int
    available: int


def _select(faults: Iterable[Fault], names: list[str]) -> dict[str, list[Fault]]:
    by_node: dict[str, list[Fault]] = {n: [] for n in names}
    for f in faults:
        name = f.node
        if name.isdigit():
            if int(name) >= len(names):
                raise ValueError(f"fault {f.kind}: node index {name} out of range (fleet has {len(names)} nodes)")
            name = names[int(name)]
        if name not in by_node:
            raise ValueError(f"fault {f.kind}: no node named {f.node!r}")
        by_node[name].append(f)
    return by_node


class Fleet:
    """N simulated nodes on one simulated clock, stepped by one thread."""

    def __init__(self, config: FleetConfig, render: bool = True) -> None:
        config.validate()
        self.config = config
        start = config.start if config.start is not None else math.floor(time.time())
        self.clock = SimClock(start)
        trace_path = config.trace or default_trace_path()
        if trace_path is not None:
            self.trace: Sequence[float] = load_trace(trace_path)
        else:
            log.warning("no workload trace found; using a synthetic diurnal shape")
            self.trace = diurnal_trace()
        self._own_workdir = config.workdir is None
        base = Path("/dev/shm") if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK) else None
        self.workdir = Path(config.workdir) if config.workdir else Path(tempfile.mkdtemp(prefix="wattfleet-sim-",
                                                                                       dir=base))
        rng = random.Random(config.seed)
        names = [f"{config.node_prefix}{i:04d}" for i in range(config.nodes)]
        faults = _select(config.faults, names)
        self.nodes: list[SimNode] = []
        for i, name in enumerate(names):
            site, zone = config.sites[i % len(config.sites)]
            model = gpu_model(config.gpu_models[i % len(config.gpu_models)])
            estimated = config.estimated_cpu_every and (i % config.estimated_cpu_every == config.estimated_cpu_every - 1)
            root = None if estimated else self.workdir / name
            stateful = any(f.kind == "exporter_restart" and f.state for f in faults[name])
            state_path = self.workdir / f"{name}.exporter-state.json" if stateful else None
            self.nodes.append(SimNode(i, name, site, zone, model, config, self.clock, self.trace,
                                      random.Random(rng.getrandbits(64)), root, faults[name], render,
                                      state_path=state_path))
        self.by_name = {n.name: n for n in self.nodes}
        self.ticks = 0
        self.last_tick_seconds = 0.0
        self.max_tick_seconds = 0.0
        self.overruns = 0
        self._tick_all()  # first sample: baselines, and every node has a snapshot to serve
        self._paused = threading.Event()
        self._tick_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._servers: list[Any] = []
        self.http: HttpServer | None = None
        self.targets: list[tuple[str, str, dict[str, str]]] = []   # (node, host:port, labels)

    # --- stepping ------------------------------------------------------------
    def _tick_all(self) -> None:
        started = time.perf_counter()
        for node in self.nodes:
            node.tick(self.config.step_seconds)
        self.ticks += 1
        self.last_tick_seconds = time.perf_counter() - started
        self.max_tick_seconds = max(self.max_tick_seconds, self.last_tick_seconds)

    def step(self, steps: int = 1) -> None:
        """Advance simulated time by ``steps`` ticks (each ``interval x acceleration`` seconds)."""
        for _ in range(steps):
            self.clock.now += self.config.step_seconds
            self._tick_all()

    def start(self) -> None:
        """Step in real time on a background thread: one tick per ``interval`` real seconds."""
        self._thread = threading.Thread(target=self._run, name="wattfleet-simulator", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop.is_set():
            deadline += self.config.interval
            delay = deadline - time.monotonic()
            if delay < 0:
                self.overruns += 1
                deadline, delay = time.monotonic(), 0.0
            if self._stop.wait(delay):
                break
            with self._tick_lock:
                if not self._paused.is_set():
                    self.step()

    def pause(self) -> None:
        """Stop advancing simulated time (snapshots keep being served); returns after any tick in flight."""
        with self._tick_lock:
            self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    # --- serving ---------------------------------------------------------------
    def serve(self, host: str = "127.0.0.1", port: int = 0, mode: str = "paths", base_port: int = 0,
              web: WebConfig | None = None) -> None:
        """Start HTTP: one server with /nodes/<name>/metrics (and /sim/status), plus per-node ports in ``ports`` mode."""
        if mode not in ("paths", "ports"):
            raise ValueError(f"serve mode {mode!r} must be paths or ports")
        # hundreds of targets may connect at once after a Prometheus restart: a deep backlog
        self.http = HttpServer(f"{host}:{port}", _fleet_routes(self), web, backlog=1024)
        self.http.start()
        address = f"{host}:{self.http.port}"
        self.targets = []
        for i, node in enumerate(self.nodes):
            if mode == "paths":
                self.targets.append((node.name, address, {"__metrics_path__": f"/nodes/{node.name}/metrics",
                                                          "instance": node.name}))
            else:
                server = MetricsServer(f"{host}:{base_port + i if base_port else 0}",
                                       lambda node=node: node.sampler.snapshot, web)
                server.start()
                self._servers.append(server)
                self.targets.append((node.name, f"{host}:{server.port}", {}))

    @property
    def url(self) -> str:
        assert self.http is not None, "serve() first"
        return f"{self.http.scheme}://{self.http.host}:{self.http.port}"

    def file_sd(self) -> list[dict[str, Any]]:
        """Prometheus file_sd target groups, one per node."""
        return [{"targets": [address], "labels": labels} for _, address, labels in self.targets]

    def dump_file_sd(self, path: str | os.PathLike[str]) -> None:
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(self.file_sd(), indent=1) + "\n")
        os.replace(tmp, path)  # Prometheus watches the file: never let it read half of it

    def status(self) -> dict[str, Any]:
        return {"nodes": len(self.nodes), "gpus": sum(len(n.gpus) for n in self.nodes),
                "sim_time": self.clock.now, "sim_elapsed_seconds": self.clock.elapsed, "ticks": self.ticks,
                "interval": self.config.interval, "acceleration": self.config.acceleration,
                "last_tick_seconds": self.last_tick_seconds, "max_tick_seconds": self.max_tick_seconds,
                "overruns": self.overruns, "paused": self._paused.is_set(),
                "sites": {s: z for s, z in self.config.sites}}

    def ground_truth(self) -> dict[str, dict[str, float]]:
        """Per node: true GPU and CPU (package+dram) joules since the first sample, and the exporter's GPU counter."""
        return {n.name: {"gpu_joules": n.true_gpu_joules(), "cpu_joules": n.true_cpu_joules(),
                         "exporter_gpu_joules": n.exporter_gpu_joules()} for n in self.nodes}

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.http is not None:
            self.http.stop()
        for server in self._servers:
            server.stop()
        for node in self.nodes:
            node.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Fleet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _fleet_routes(fleet: Fleet) -> Routes:
    """``/nodes/<name>/...`` answers like that node's own exporter; ``/sim/status`` and ``/sim/targets`` as JSON."""
    per_node: dict[str, Routes] = {}

    def node(request: Request) -> Response:
        parts = request.path.split("/")
        if len(parts) < 4:
            return NOT_FOUND
        sim_node = fleet.by_name.get(parts[2])
        if sim_node is None:
            return Response(404, f"no simulated node {parts[2]!r}\n".encode())
        routes = per_node.get(sim_node.name)
        if routes is None:
            routes = per_node[sim_node.name] = snapshot_routes(lambda: sim_node.sampler.snapshot)
        sub = "/" + "/".join(parts[3:])
        handler = routes.resolve(sub)
        return handler(dataclasses.replace(request, path=sub)) if handler is not None else NOT_FOUND

    routes = snapshot_routes(lambda: None)  # the fleet itself has no snapshot: /metrics and /-/ready say so
    routes.exact["/sim/status"] = lambda request: Response(200, json.dumps(fleet.status()).encode(), JSON)
    routes.exact["/sim/targets"] = lambda request: Response(200, json.dumps(fleet.file_sd()).encode(), JSON)
    routes.prefixes["/nodes/"] = node
    return routes


# --- backfill ----------------------------------------------------------------
BACKFILL_FAMILIES = (catalog.GPU_ENERGY, catalog.CPU_ENERGY, catalog.COLLECTOR_ERRORS)
CORRECTION_FAMILIES = (catalog.COUNTER_WRAPS, catalog.COUNTER_RESETS)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)


@dataclass
class BackfillSummary:
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


# --- CLI -----------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fleet")
    g.add_argument("--nodes", type=int, default=4, help="simulated nodes (default 4)")
    g.add_argument("--gpus-per-node", type=int, default=8, help="GPUs per node (default 8)")
    g.add_argument("--gpu-models", default="h100", metavar="LIST",
                   help="comma-separated GPU models assigned to nodes round-robin: h100, a100 (default h100)")
    g.add_argument("--sites", default=",".join(f"{s}:{z}" for s, z in DEFAULT_SITES), metavar="LIST",
                   help="comma-separated SITE:ZONE (or ZONE) assigned to nodes round-robin "
                        "(default dc-ciso:CISO,dc-bpat:BPAT,dc-miso:MISO)")
    g.add_argument("--cluster", default="sim", help="value of the cluster label (default sim)")
    g.add_argument("--sockets", type=int, default=2, help="CPU sockets (RAPL package + dram zones) per node")
    g.add_argument("--estimated-cpu-every", type=int, default=0, metavar="N",
                   help="every Nth node has no RAPL and reports estimated CPU energy (default 0: none)")
    g.add_argument("--trace", type=Path, metavar="CSV",
                   help="hourly workload trace (index,cpu_load); default $WATTFLEET_WORKLOAD_TRACE or the "
                        "shared Alibaba trace")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="inject a fault, repeatable: KIND:node=N[,gpu=I][,sensor=nvml|rapl][,at=DUR][,for=DUR]"
                        "[,seconds=S][,range_joules=J][,state=file|none]; KIND is one of " + ", ".join(FAULT_KINDS)
                        + "; exporter_restart with state=file: the node's exporter keeps a --state-file")
    g = p.add_argument_group("live serving")
    g.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="real seconds between samples (default 1.0)")
    g.add_argument("--acceleration", type=float, default=1.0, metavar="K",
                   help="simulated seconds per real second (default 1; 1440 makes a day pass in a minute)")
    g.add_argument("--start", metavar="TIME", help="simulated start, unix seconds or ISO 8601 (default now)")
    g.add_argument("--listen-host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    g.add_argument("--port", type=int, default=0, help="port of the fleet server (default: a free port)")
    g.add_argument("--serve", choices=("paths", "ports"), default="paths",
                   help="paths: one server, /nodes/<name>/metrics per node (default); ports: one port per node")
    g.add_argument("--base-port", type=int, default=0, help="ports mode: first node's port (default: free ports)")
    g.add_argument("--dump-file-sd", metavar="FILE", help="write the targets as Prometheus file_sd JSON")
    g.add_argument("--duration", default="0", metavar="DUR",
                   help="stop after this much real time (default 0: until SIGTERM/SIGINT)")
    g = p.add_argument_group("backfill")
    g.add_argument("--backfill-openmetrics", metavar="FILE",
                   help="instead of serving, write the counters for --span as OpenMetrics with timestamps")
    g.add_argument("--span", default="1d", metavar="DUR", help="backfill span (default 1d)")
    g.add_argument("--step", default="60s", metavar="DUR", help="backfill sample step (default 60s)")
    g.add_argument("--end", metavar="TIME", help="backfill end, unix seconds or ISO 8601 (default now)")
    g.add_argument("--with-corrections", action="store_true",
                   help="backfill also the wrap/reset correction counters (larger file)")
    g.add_argument("--replicas", type=int, default=1, metavar="N",
                   help="write each simulated node's series N times under node names <node>-rNNN "
                        "(scale a store's load without simulating every node; default 1)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="serve a simulated fleet of exporters (or backfill one)",
                       description="A fleet of simulated nodes, each a real wattfleet exporter (sampler, NVML and "
                                   "RAPL sensors) over fake hardware driven by real workload traces, served from "
                                   "one process for a real Prometheus to scrape; or an OpenMetrics backfill file.")
    add_arguments(p)
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> FleetConfig:
    return FleetConfig(
        nodes=args.nodes, gpus_per_node=args.gpus_per_node,
        gpu_models=tuple(m.strip() for m in args.gpu_models.split(",") if m.strip()),
        sites=parse_sites(args.sites), cluster=args.cluster, interval=args.interval,
        acceleration=args.acceleration, start=parse_time(args.start) if args.start else None, seed=args.seed,
        trace=args.trace, sockets=args.sockets, estimated_cpu_every=args.estimated_cpu_every,
        faults=[Fault.parse(s) for s in args.fault])


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
        config.validate()
        duration = parse_duration(args.duration, "--duration")
        if args.backfill_openmetrics:
            span, step = parse_duration(args.span, "--span"), parse_duration(args.step, "--step")
            end = parse_time(args.end) if args.end else None
            if step <= 0 or span < step:
                raise ValueError(f"--step {args.step} must be positive and no longer than --span {args.span}")
            if args.replicas < 1:
                raise ValueError(f"--replicas must be at least 1, got {args.replicas}")
    except ValueError as exc:
        print(f"wattfleet simulate: {exc}", file=sys.stderr)
        return 2
    if args.backfill_openmetrics:
        summary = write_backfill(config, args.backfill_openmetrics, span, step, end, args.with_corrections,
                                 progress=lambda i, n: log.info("backfill step %d/%d", i, n),
                                 replicas=args.replicas)
        true_kwh = sum(summary.true_gpu_joules.values()) / 3.6e6
        print(f"wrote {args.backfill_openmetrics}: {summary.samples} samples, {summary.bytes / 1e6:.1f} MB, "
              f"{summary.nodes} nodes x {args.gpus_per_node} GPUs, {summary.steps} steps of {step:g}s "
              f"({summary.device_hours:.0f} GPU-hours) in {summary.seconds:.1f}s; GPU energy {true_kwh:.3f} kWh")
        print(f"load it with: promtool tsdb create-blocks-from openmetrics {args.backfill_openmetrics} DATA_DIR")
        return 0
    fleet = Fleet(config)
    fleet.serve(args.listen_host, args.port, args.serve, args.base_port)
    if args.dump_file_sd:
        fleet.dump_file_sd(args.dump_file_sd)
    fleet.start()
    log.info("simulating %d nodes x %d GPUs at %s (status %s/sim/status)", config.nodes, config.gpus_per_node,
             fleet.url, fleet.url)
    wait_for_stop_signal(duration if duration > 0 else None)
    fleet.stop()
    return 0
