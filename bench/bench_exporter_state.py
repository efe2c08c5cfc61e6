"""What --state-file costs per sample: the exporter on 8 fake GPUs and 2 RAPL sockets, with and without it.

Not a test. Each sample with a state file also serializes every energy counter and writes it
atomically (tmp file, fsync, rename, directory fsync) before publishing the snapshot. The state
directory is on the disk under /var/tmp (not tmpfs), so fsync costs what it costs on this machine.

Usage: flock /tmp/wattfleet-bench.lock python bench/bench_exporter_state.py [--samples 300]
       [--json bench/results/exporter_state.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.sensors.base import Sensor
from wattfleet.exporter.sensors.host import HostSensor
from wattfleet.exporter.sensors.nvml import NvmlSensor
from wattfleet.exporter.sensors.rapl import RaplSensor
from wattfleet.exporter.state import StateFile
from wattfleet.sim.fake_nvml import FakeNvml
from wattfleet.sim.fake_powercap import FakePowercap


def measure(root: Path, state: Path | None, samples: int) -> dict[str, float]:
    powercap = FakePowercap(root / "sys", sockets=2)
    nvml = FakeNvml.with_gpus(8, watts=300.0)
    sensors: list[Sensor] = [RaplSensor(root / "sys"), NvmlSensor(nvml), HostSensor(estimate=False)]
    sampler = Sampler(sensors, {"node": "bench"}, state=StateFile(state, boot_id="bench") if state else None)
    wall, cpu = [], []
    for _ in range(samples):
        powercap.update()
        w0, c0 = time.perf_counter(), time.process_time()
        sampler.sample_once()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    sampler.stop()
    wall.sort()
    return {"wall_ms_median": 1e3 * statistics.median(wall), "wall_ms_p99": 1e3 * wall[int(0.99 * (len(wall) - 1))],
            "cpu_ms_mean": 1e3 * statistics.fmean(cpu),
            "state_file_bytes": state.stat().st_size if state else 0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "exporter_state.json"))
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="wattfleet-state-bench-", dir="/var/tmp"))
    try:
        result = {"samples": args.samples, "gpus": 8, "rapl_zones": 8,
                  "without_state_file": measure(root / "a", None, args.samples),
                  "with_state_file": measure(root / "b", root / "b" / "exporter.json", args.samples)}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    a, b = result["without_state_file"], result["with_state_file"]
    result["added_wall_ms_median"] = b["wall_ms_median"] - a["wall_ms_median"]
    result["added_cpu_ms_mean"] = b["cpu_ms_mean"] - a["cpu_ms_mean"]
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
