"""Build a running exporter on fake hardware, as tests and benchmarks need it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wattfleet.core.http import MetricsServer
from wattfleet.core.webconfig import WebConfig
from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.sensors.base import Sensor
from wattfleet.exporter.sensors.host import HostSensor
from wattfleet.exporter.sensors.nvml import NvmlSensor
from wattfleet.exporter.sensors.rapl import RaplSensor
from wattfleet.sim.fake_nvml import FakeNvml
from wattfleet.sim.fake_powercap import FakePowercap


@dataclass
class FakeNode:
    powercap: FakePowercap
    nvml: FakeNvml
    sampler: Sampler
    server: MetricsServer

    def stop(self) -> None:
        self.server.stop()
        self.sampler.stop()
        self.powercap.stop_writer()


def start_fake_node(sysfs_root: Path, gpus: int = 2, interval: float = 0.25, node: str = "node-a",
                    site: str = "site-a", cluster: str = "c1", web: WebConfig | None = None,
                    max_energy_range_uj: int | None = None, gpu_watts: float = 300.0,
                    clock: Callable[[], float] | None = None, writer_period: float = 0.01) -> FakeNode:
    kwargs: dict[str, Any] = {"max_energy_range_uj": max_energy_range_uj} if max_energy_range_uj else {}
    if clock is not None:
        kwargs["clock"] = clock
    powercap = FakePowercap(sysfs_root, sockets=2, **kwargs)
    nvml_kwargs: dict[str, Any] = {"clock": clock} if clock else {}
    nvml = FakeNvml.with_gpus(gpus, watts=gpu_watts, **nvml_kwargs)
    sensors: list[Sensor] = [RaplSensor(sysfs_root), NvmlSensor(nvml), HostSensor(estimate=False)]
    sampler = Sampler(sensors, {"node": node, "cluster": cluster, "site": site}, interval=interval)
    if writer_period:
        powercap.start_writer(writer_period)
    sampler.start()
    server = MetricsServer("127.0.0.1:0", lambda: sampler.snapshot, web)
    server.start()
    return FakeNode(powercap, nvml, sampler, server)
