"""A real Prometheus scrapes the simulated fleet (through file_sd) and loads its backfill."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from promserver import PROMTOOL, PrometheusServer
from wattfleet.core import catalog
from wattfleet.sim.backfill import write_backfill
from wattfleet.sim.config import FleetConfig
from wattfleet.sim.faults import Fault
from wattfleet.sim.fleet import Fleet

pytestmark = pytest.mark.prometheus

NODES, GPUS = 6, 2
CLEAN = [f"sim-{i:04d}" for i in range(4)]   # nodes without faults: exact energy
SCRAPE = "200ms"


def _scalar(result: list[dict[str, Any]]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def _wait(prom: PrometheusServer, expr: str, predicate: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = prom.query(expr)
        if predicate(result):
            return result
        time.sleep(0.2)
    raise AssertionError(f"{expr!r}: {result}; log: {prom.log_tail()}")


def test_prometheus_scrapes_every_node_and_increase_matches_ground_truth(tmp_path: Path) -> None:
    faults = [Fault("gpu_lost", "4", gpu=0, at=0, duration=1e9),
              Fault("sensor_error", "5", sensor="rapl", at=0, duration=1e9)]
    fleet = Fleet(FleetConfig(nodes=NODES, gpus_per_node=GPUS, interval=0.1, acceleration=10, faults=faults,
                              workdir=tmp_path / "sim"))
    try:
        fleet.serve()
        sd = tmp_path / "targets.json"
        fleet.dump_file_sd(sd)
        job = {"job_name": "simulated", "scrape_interval": SCRAPE, "scrape_timeout": SCRAPE,
               "file_sd_configs": [{"files": [str(sd)]}]}
        with PrometheusServer(extra_scrape_configs=[job], scrape_interval=SCRAPE) as prom:
            # Every target is up, and every GPU counter was scraped at its first value (0) before time moves.
            _wait(prom, 'sum(up{job="simulated"})', lambda r: r and float(r[0]["value"][1]) == NODES)
            prom.wait_for(catalog.GPU_ENERGY.series, min_results=NODES * GPUS)
            fleet.start()
            time.sleep(3.0)
            fleet.pause()
            truth = fleet.ground_truth()
            clean_total = sum(truth[n]["exporter_gpu_joules"] for n in CLEAN)
            selector = f'{catalog.GPU_ENERGY.series}{{node=~"{"|".join(CLEAN)}"}}'
            _wait(prom, f"sum({selector})", lambda r: r and abs(float(r[0]["value"][1]) - clean_total) < 1e-3)
            time.sleep(0.5)  # a couple more scrapes of the paused values
            for node in CLEAN:
                sel = f'{catalog.GPU_ENERGY.series}{{node="{node}"}}'
                last = _scalar(prom.query(f"max(timestamp({sel}))"))
                # Evaluated at the node's last scrape, with the counter starting at 0, increase() is exact.
                energy = _scalar(prom.query(f"sum(increase({sel}[10m]))", last))
                print("RATIO", energy / truth[node]["gpu_joules"])
                assert energy == pytest.approx(truth[node]["gpu_joules"], rel=0.005), node
                assert truth[node]["gpu_joules"] > 1000
            lost = prom.query(f'{catalog.GPU_UP.series}{{node="sim-0004",gpu="0"}}')
            errors = prom.query(f'{catalog.COLLECTOR_ERRORS.series}{{node="sim-0005",reason="read_error"}}')
            rapl_up = prom.query(f'{catalog.COLLECTOR_UP.series}{{node="sim-0005",collector="rapl"}}')
            scraped_nodes = prom.query(f"count by (node) ({catalog.BUILD_INFO.series})")
    finally:
        fleet.stop()
    assert _scalar(lost) == 0
    assert sum(float(r["value"][1]) for r in errors) > 0
    assert _scalar(rapl_up) == 0
    assert {r["metric"]["node"] for r in scraped_nodes} == {f"sim-{i:04d}" for i in range(NODES)}


def test_backfilled_month_slice_answers_increase_with_ground_truth(tmp_path: Path) -> None:
    span, step = 6 * 3600, 60
    end = (time.time() // 3600 - 1) * 3600
    out = tmp_path / "fleet.om"
    faults = [Fault("rapl_wrap_storm", "1")]
    summary = write_backfill(FleetConfig(nodes=3, gpus_per_node=2, faults=faults), out, span, step, end,
                             corrections=True)
    prom = PrometheusServer(scrape_interval="1h")
    proc = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(out), str(prom.dir / "data")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with prom:
        gpu = prom.query(f"sum by (node) (increase({catalog.GPU_ENERGY.series}[{span}s]))", end)
        cpu = prom.query(f'sum by (node) (increase({catalog.CPU_ENERGY.series}{{domain=~"package|dram"}}'
                         f'[{span}s]))', end)
        wraps = prom.query(f'sum({catalog.COUNTER_WRAPS.series}{{node="sim-0001",sensor="rapl"}})', end)
        resets = prom.query(f"sum(resets({catalog.CPU_ENERGY.series}[{span}s]))", end)
    by_node = {r["metric"]["node"]: float(r["value"][1]) for r in gpu}
    assert by_node.keys() == summary.true_gpu_joules.keys()
    for node, joules in by_node.items():
        assert joules == pytest.approx(summary.true_gpu_joules[node], rel=0.005)
    for r in cpu:
        assert float(r["value"][1]) == pytest.approx(summary.true_cpu_joules[r["metric"]["node"]], rel=0.005)
    assert _scalar(wraps) > 100          # the storm node's RAPL counters wrapped all the time...
    assert _scalar(resets) == 0          # ...and Prometheus never saw a counter go backwards


def test_one_prometheus_scrapes_two_hundred_simulated_exporters(tmp_path: Path) -> None:
    """Hundreds of targets from one process: every one up, every GPU series there, values right."""
    nodes = 200
    fleet = Fleet(FleetConfig(nodes=nodes, gpus_per_node=1, sockets=1, interval=1.0, acceleration=60,
                              workdir=tmp_path / "sim"))
    try:
        fleet.serve()
        sd = tmp_path / "targets.json"
        fleet.dump_file_sd(sd)
        job = {"job_name": "simulated", "scrape_interval": "1s", "scrape_timeout": "1s",
               "file_sd_configs": [{"files": [str(sd)]}]}
        with PrometheusServer(extra_scrape_configs=[job], scrape_interval="1s") as prom:
            _wait(prom, 'sum(up{job="simulated"})', lambda r: r and float(r[0]["value"][1]) == nodes, timeout=40)
            fleet.step(5)
            total = sum(v["exporter_gpu_joules"] for v in fleet.ground_truth().values())
            _wait(prom, f"sum({catalog.GPU_ENERGY.series})",
                  lambda r: r and abs(float(r[0]["value"][1]) - total) < 1e-6 * total, timeout=40)
            per_node = prom.query(f"count by (node) ({catalog.GPU_ENERGY.series})")
    finally:
        fleet.stop()
    assert len(per_node) == nodes and total > 0
