"""Tiny runs of the exporter benchmarks (bench/bench_exporter_*.py) so that they do not rot.

These are not performance tests: no timing is asserted. They check that each
benchmark runs end to end against the real node_exporter (and Prometheus for
the accuracy one) and writes its JSON; the accuracy run also checks what is
exact by construction (our RAPL counters across wraps).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from paths import REPO

BENCH = REPO / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from bench_exporter_common import have_node_exporter  # noqa: E402

from shared_data import needs_traces  # noqa: E402

needs_node_exporter = pytest.mark.skipif(not have_node_exporter(),
                                         reason="prometheus-node-exporter not installed (Debian package)")


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_node_exporter
def test_scrape_benchmark_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load("bench_exporter_scrape")
    rc = bench.main(["--scrapes", "10", "--idle-seconds", "0.3", "--warmup", "1", "--gpus", "8",
                     "--out", str(tmp_path)])
    assert rc == 0
    result = json.loads((tmp_path / "bench_exporter_scrape.json").read_text())
    assert result["series"] == {"node_exporter_rapl_series": 8, "ours_package_series": 2, "ours_gpu_series": 8}
    for run in ("latency_plain", "latency_gzip"):
        for exporter in ("ours", "node_exporter"):
            assert result[run][exporter]["scrapes"] == 10
            assert result[run][exporter]["p50_ms"] > 0
    assert set(result["rss_mb"]) == {"ours", "node_exporter"}
    assert "scrape p50 ms" in capsys.readouterr().out


@needs_traces
@needs_node_exporter
@pytest.mark.prometheus
def test_accuracy_benchmark_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load("bench_exporter_accuracy")
    # 15 simulated minutes with a small wrap range: many wraps, one GPU reload, a few seconds of real time.
    rc = bench.main(["--hours", "0.25", "--max-energy-range-uj", "5000000000", "--gpus", "4",
                     "--reload-at-hour", "0.1", "--out", str(tmp_path)])
    assert rc in (0, 1)  # 1 = target missed; the reload row depends on the sampling period
    result = json.loads((tmp_path / "bench_exporter_accuracy.json").read_text())
    errors = result["errors_percent"]
    for row in ("CPU package, 2 sockets", "CPU dram, 2 sockets", "CPU all RAPL domains"):
        assert abs(errors[row]["ours"]) < 1e-6, errors[row]   # exact across wraps
        assert errors[row]["node_exporter_raw"] < 0            # Prometheus reads each wrap as a reset
    assert result["rapl_wraps_ours"] == result["rapl_wraps_true"]
    assert sum(result["rapl_wraps_true"].values()) > 10
    assert sum(result["gpu_resets_ours"].values()) == 1
    assert "30 s power gauge" in capsys.readouterr().out
