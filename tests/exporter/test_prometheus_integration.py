"""The exporter scraped by a real Prometheus: increase() must match the energy fed in."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from exporter_fixtures import start_fake_node
from promserver import PROMTOOL, PrometheusServer
from wattfleet.core import catalog

pytestmark = pytest.mark.prometheus

PACKAGE_W, GPU_W = 120.0, 300.0
WINDOW_S = 30


def test_promtool_check_metrics_is_clean_on_a_live_scrape(sysfs_root: Path) -> None:
    node = start_fake_node(sysfs_root, writer_period=0)
    try:
        body = urllib.request.urlopen(node.server.url, timeout=5).read()
    finally:
        node.stop()
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True)
    assert proc.stdout.decode() + proc.stderr.decode() == ""
    assert proc.returncode == 0


@pytest.mark.slow
def test_increase_matches_energy_fed_within_0_1_percent(sysfs_root: Path) -> None:
    # A 600 J wrap range makes the package counters wrap every 5 s at 120 W.
    node = start_fake_node(sysfs_root, gpus=2, interval=0.1, max_energy_range_uj=600_000_000,
                           gpu_watts=GPU_W, writer_period=0.002)
    target = f"127.0.0.1:{node.server.port}"
    try:
        with PrometheusServer([target], scrape_interval="500ms") as prom:
            prom.wait_for(catalog.GPU_ENERGY.series, min_results=2)
            time.sleep(WINDOW_S + 2)
            now = time.time()
            gpu = prom.query(f'sum(increase({catalog.GPU_ENERGY.series}[{WINDOW_S}s]))', now)
            pkg = prom.query(f'sum(increase({catalog.CPU_ENERGY.series}{{domain="package"}}[{WINDOW_S}s]))', now)
            wraps = prom.query(f'sum({catalog.COUNTER_WRAPS.series}{{sensor="rapl"}})', now)
            prom_resets = prom.query(f'sum(resets({catalog.CPU_ENERGY.series}[{WINDOW_S}s]))', now)
    finally:
        node.stop()
    gpu_j, pkg_j = float(gpu[0]["value"][1]), float(pkg[0]["value"][1])
    assert gpu_j == pytest.approx(2 * GPU_W * WINDOW_S, rel=1e-3)
    assert pkg_j == pytest.approx(2 * PACKAGE_W * WINDOW_S, rel=1e-3)
    assert float(wraps[0]["value"][1]) >= 2 * WINDOW_S / 5 - 2   # the hardware did wrap...
    assert float(prom_resets[0]["value"][1]) == 0                  # ...and Prometheus never saw it
