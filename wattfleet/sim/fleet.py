"""A fleet of simulated nodes on one simulated clock, stepped by one thread and served by one HTTP server.

To scale to hundreds of targets on a couple of cores, one thread steps every
:class:`~wattfleet.sim.node.SimNode` (instead of a sampler thread per node)
and one :class:`~wattfleet.core.http.HttpServer` answers every node at
``/nodes/<name>/metrics`` exactly as that node's own exporter would; ``ports``
mode gives each node its own :class:`~wattfleet.core.http.MetricsServer`
instead. Simulated time can run ``acceleration`` times faster than real time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wattfleet.core.http import HttpServer, MetricsServer
from wattfleet.core.routes import JSON, NOT_FOUND, Request, Response, Routes, snapshot_routes
from wattfleet.core.webconfig import WebConfig
from wattfleet.sim.config import FleetConfig
from wattfleet.sim.faults import faults_by_node
from wattfleet.sim.load import default_trace_path, diurnal_trace, gpu_model, load_trace
from wattfleet.sim.node import SimClock, SimNode

log = logging.getLogger(__name__)


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
        self.apiserver: Any = None  # FakeApiServer when the nodes run pods
        token_file = self.workdir / "apiserver-token"
        if config.pods:
            try:
                from wattfleet.sim.pods import PodsSetup  # lazy: needs the kubernetes extra (grpcio), only with pods
            except ImportError as exc:
                raise ValueError(f"simulated pods need the kubernetes extra (pip install 'wattfleet[kubernetes]'): "
                                 f"{exc}") from None
            from wattfleet.sim.fake_apiserver import FakeApiServer  # lazy: only a fleet with pods has a cluster
            self.apiserver = FakeApiServer([])
            self.workdir.mkdir(parents=True, exist_ok=True)
            token_file.write_text(self.apiserver.token + "\n")
        names = [f"{config.node_prefix}{i:04d}" for i in range(config.nodes)]
        faults = faults_by_node(config.faults, names)
        self.nodes: list[SimNode] = []
        for i, name in enumerate(names):
            site, zone = config.sites[i % len(config.sites)]
            model = gpu_model(config.gpu_models[i % len(config.gpu_models)])
            every = config.estimated_cpu_every
            estimated = every and (i % every == every - 1)
            root = None if estimated else self.workdir / name
            stateful = any(f.kind == "exporter_restart" and f.state for f in faults[name])
            state_path = self.workdir / f"{name}.exporter-state.json" if stateful else None
            # The pods draw from a generator of their own: the fleet's draws (and energy) are the same without them.
            pods = PodsSetup(self.workdir / f"{name}.pods", random.Random(f"pods/{config.seed}/{name}"),
                             self.apiserver.url, token_file) if self.apiserver is not None else None
            node = SimNode(i, name, site, zone, model, config, self.clock, self.trace,
                           random.Random(rng.getrandbits(64)), root, faults[name], render,
                           state_path=state_path, pods=pods)
            if node.pods is not None:
                self.apiserver.pods.extend(node.pods.api_objects())
                for job in node.pods.api_jobs():
                    self.apiserver.jobs[(job["metadata"]["namespace"], job["metadata"]["name"])] = job
            self.nodes.append(node)
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
        self._servers: list[MetricsServer] = []
        self.http: HttpServer | None = None
        self.targets: list[tuple[str, str, dict[str, str]]] = []   # (node, host:port, labels)

    # --- stepping ------------------------------------------------------------
    def _tick_all(self) -> None:
        """Sample every node once, timing the tick so ``status()`` shows whether the fleet keeps up."""
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
        """Tick on a fixed real-time grid; a late tick counts an overrun and restarts the grid instead of bursting."""
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
        """Let simulated time advance again from where it was paused."""
        self._paused.clear()

    # --- serving ---------------------------------------------------------------
    def serve(self, host: str = "127.0.0.1", port: int = 0, mode: str = "paths", base_port: int = 0,
              web: WebConfig | None = None) -> None:
        """Start HTTP: one server with /nodes/<name>/metrics (and /sim/status), plus per-node ports in
        ``ports`` mode."""
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
                server = MetricsServer(f"{host}:{base_port + i if base_port else 0}", node.snapshot, web)
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
        """Write :meth:`file_sd` for Prometheus's file_sd_configs, atomically."""
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(self.file_sd(), indent=1) + "\n")
        os.replace(tmp, path)  # Prometheus watches the file: never let it read half of it

    def status(self) -> dict[str, Any]:
        """Size, simulated time and tick timings, served at ``/sim/status`` to watch a run keep up."""
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
        """Stop ticking and serving, close every node's exporter, and remove the workdir if the fleet made it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.http is not None:
            self.http.stop()
        for server in self._servers:
            server.stop()
        for node in self.nodes:
            node.stop()
        if self.apiserver is not None:
            self.apiserver.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Fleet:
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
            routes = per_node[sim_node.name] = snapshot_routes(sim_node.snapshot)
        sub = "/" + "/".join(parts[3:])
        handler = routes.resolve(sub)
        return handler(dataclasses.replace(request, path=sub)) if handler is not None else NOT_FOUND

    routes = snapshot_routes(lambda: None)  # the fleet itself has no snapshot: /metrics and /-/ready say so
    routes.exact["/sim/status"] = lambda request: Response(200, json.dumps(fleet.status()).encode(), JSON)
    routes.exact["/sim/targets"] = lambda request: Response(200, json.dumps(fleet.file_sd()).encode(), JSON)
    routes.prefixes["/nodes/"] = node
    return routes

