"""What shapes a simulated fleet: its size, GPU models, sites, timing, trace and faults.

One dataclass that both the CLI and in-process users (the demo, benchmarks,
tests) fill in, checked once by :meth:`FleetConfig.validate` before a fleet is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wattfleet.sim.faults import Fault
from wattfleet.sim.load import gpu_model

# Three grid regions with very different carbon intensity: California, Bonneville (hydro), Midcontinent.
DEFAULT_SITES = (("dc-ciso", "CISO"), ("dc-bpat", "BPAT"), ("dc-miso", "MISO"))


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
    # Simulated vLLM, SGLang and TGI engines on each node's GPUs (wattfleet.sim.engines), scraped by the
    # exporter's inference collector.
    engines: bool = False
    engine_cache_hit_ratio: float | None = None  # every engine's mean prefix-cache hit ratio (default: its own)
    engine_hit_ratio_spread: float = 0.15        # how far the hourly hit ratio swings either side of the mean
    # Kubernetes pods holding GPUs and using CPU on each node (wattfleet.sim.pods), attributed by the exporter's
    # workload collector through a fake kubelet, cgroup tree and API server (needs the kubernetes extra).
    pods: bool = False

    @property
    def step_seconds(self) -> float:
        """Simulated seconds per tick: the real interval stretched by the acceleration."""
        return self.interval * self.acceleration

    def validate(self) -> None:
        """Refuse a fleet that cannot be built, before any node is (raises ValueError saying why)."""
        if self.nodes < 1 or self.gpus_per_node < 0 or self.sockets < 1:
            raise ValueError("need nodes >= 1, gpus per node >= 0 and sockets >= 1")
        if self.interval <= 0 or self.acceleration <= 0:
            raise ValueError("interval and acceleration must be positive")
        if not self.sites:
            raise ValueError("at least one site is needed")
        for key in self.gpu_models:
            gpu_model(key)
        if self.engine_cache_hit_ratio is not None and not 0.0 <= self.engine_cache_hit_ratio <= 0.9:
            raise ValueError("engine cache hit ratio must be within 0..0.9")


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
