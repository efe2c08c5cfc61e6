"""Tiny runs of the exporter benchmarks (bench/bench_exporter_*.py) and of the fault campaign's hostile-input
faults (bench/fault_exporter.py, bench/fault_aggregator.py, bench/fault_inference.py, bench/fault_rows.py) so that
they do not rot.

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

from shared_data import needs_ciso, needs_traces  # noqa: E402

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


@needs_node_exporter
def test_equal_work_benchmark_runs(tmp_path: Path) -> None:
    bench = load("bench_exporter_equal_work")
    assert bench.main(["--scrape-intervals", "1", "2", "--window", "0.5", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "bench_exporter_equal_work.json").read_text())["cpu_percent_of_a_core"]
    assert set(result) == {"scrape_every_1s", "scrape_every_2s"}
    for modes in result.values():
        assert set(modes) == {"1s_sampling", "sampling_at_scrape_interval"}
        assert all(set(cpu) == {"ours", "node_exporter"} for cpu in modes.values())


def test_rollup_benchmark_checks_every_engine_against_duckdb(tmp_path: Path) -> None:
    """The rollup benchmark's pandas and Polars rollups equal DuckDB's row for row (a tiny fleet), and the
    pre-issue-18 SQL it times beside the shipped one gives exactly the shipped rows in every rollup table."""
    import subprocess
    out = tmp_path / "rollup.json"
    proc = subprocess.run([sys.executable, str(BENCH / "rollup_bench.py"), "--gpus", "40", "--hours", "30",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["commit"] and result["machine"] and result["time_utc"] and "rollup_bench.py" in result["command"]
    for engine in ("duckdb_fanout", "pandas", "polars"):
        assert result["results"][engine]["rows_differing_from_duckdb"] == 0
        assert result["results"][engine]["rollup_rows"] == result["results"]["duckdb"]["rollup_rows"] > 0
    assert set(result["results"]["duckdb_fanout"]["rows_differing_by_table"]) == {
        "rollup", "rollup_workload", "rollup_inference", "rollup_inference_prompt"}


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


def test_fault_campaign_exporter_faults_run_fast(tmp_path: Path) -> None:
    exporter, rows = load("fault_exporter"), load("fault_rows")
    result = exporter.run_all(tmp_path, fast=True)
    hang = result["hung_nvml"]["0.6s"]
    assert hang["while_hung"]["collector_up_nvml"] == [0.0] and hang["while_hung"]["ready_status"] == 200
    assert hang["while_hung"]["timeout_errors"] >= 1 and hang["recovered_joules"] > 0
    rapl = result["rapl_implausible"]["counter_mid_range"]
    assert rapl["faulted"]["implausible_errors"] >= 2 and rapl["clean"]["implausible_errors"] == 0
    assert result["tls_idle"]["scrapes_ok"] == result["tls_idle"]["scrapes"]
    auth = result["basic_auth"]
    assert auth["long_password_status"] == 401 and auth["flood"]["status_429"] > 0
    assert auth["right_password_after_flood"] == 200
    assert result["alias_bomb"]["facility_config"]["rc"] == 2 and result["alias_bomb"]["web_config"]["rc"] == 2
    assert result["state_files"]["symlinked_state_file"]["exit"] == 2
    assert result["state_files"]["unwritable_state_directory"]["exit"] == 2
    assert result["state_files"]["symlink_target_untouched"]
    nested = result["state_files"]["deeply_nested_json"]   # documented: one warning, counters from 0, file replaced
    assert nested["exit"] == "kept running" and nested["ready_status"] == 200 and nested["state_file_rewritten"]
    assert "state file unusable" in nested["message"] and "JSON nested too deeply" in nested["message"]
    assert not any("deprecated" in ln for c in result["state_files"].values() if isinstance(c, dict)
                   for ln in c["stderr"])   # the campaign uses the current flag spellings
    for name in ("hung_nvml", "rapl_implausible", "tls_idle", "basic_auth", "alias_bomb", "state_files"):
        assert len(getattr(rows, name)(result[name])) == 5


def test_fault_campaign_inference_faults_run_fast() -> None:
    inference, rows = load("fault_inference"), load("fault_rows")
    result = inference.run_all(fast=True)
    hostile = result["hostile_counter"]
    assert hostile["unchanged_while_hostile"] and hostile["all_finite"]
    assert hostile["exported_after"] == hostile["truth_after"]
    assert hostile["rejected"] == {"too_large": 1, "not_finite": 2}
    rep = result["replicated_endpoint"]
    assert rep["engine_up"] == 0 and rep["collector_errors"] == ["replicated_endpoint"] and rep["at_most_truth"]
    assert rep["rejected"]["replicated_endpoint"] >= 1
    dip = result["dipping_counter"]
    assert dip["equal"] and dip["engine_up"] == 1 and dip["rejected"] == {"counter_dip": dip["dips"]}
    marked_cases = [c for c in result["marked_above_gpus"].values() if isinstance(c, dict)]
    assert len(marked_cases) == 2
    for marked in marked_cases:
        assert marked["capped_by_gpu_energy"] and sum(marked["rejected"].values()) == 1
    churn = result["label_churn"]
    # Bounded by max_models (100) x the series one model has (tokens by phase, prompt tokens by source,
    # requests, GPU and attribution info, ...): 7 at most on this page.
    assert churn["series_exported_last_tick"] <= 700 and churn["labels_seen"] >= 3000
    assert len(rows.inference_rows(result)) == 5 and all(len(row) == 5 for row in rows.inference_rows(result))


@needs_ciso
def test_fault_campaign_store_free_aggregator_faults_run(tmp_path: Path) -> None:
    """The aggregator-side faults that need no Prometheus: unusable databases and hostile /api/plan queries."""
    aggregator, rows, scale = load("fault_aggregator"), load("fault_rows"), load("scale_common")
    config = scale.write_facility(tmp_path / "facility.yaml")
    dbs = aggregator.unusable_databases(tmp_path, config, "http://127.0.0.1:9")
    assert {dbs[f"{k}/{c}"]["rc"] for k in ("corrupt", "newer_schema") for c in ("report", "aggregate")} == {2}
    assert dbs["corrupt/file_unchanged"] and dbs["newer_schema/file_unchanged"]
    plan = aggregator.plan_hostile(config)
    assert plan["site_x400"]["same_body_as_one_site"] and plan["site_x400"]["strict_json"]
    assert plan["energy_1e400"]["status"] == 400 and plan["energy_1e400"]["strict_json"]
    assert plan["client_leaves"]["abandoned"] == 1
    assert len(rows.unusable_databases(dbs)) == 2 and len(rows.plan_hostile(plan)) == 5


def test_workload_attribution_benchmark_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """bench/bench_workloads.py end to end on a small node: both exporters, fake kubelet, fake cgroup tree."""
    pytest.importorskip("grpc", reason="the kubernetes extra (grpcio, protobuf) is not installed")
    bench = load("bench_workloads")
    rc = bench.main(["--pods", "6", "--gpu-pods", "2", "--gpus", "2", "--window", "0.5", "--rounds", "1",
                     "--warmup", "2.5", "--out", str(tmp_path)])
    assert rc in (0, 1)  # 1 = target missed: no timing is asserted here
    result = json.loads((tmp_path / "bench_workloads.json").read_text())
    assert result["workload_series"] == {"cpu": 6, "dram": 6, "gpu": 2}
    assert result["commit"] and result["machine"] and result["time_utc"] and "bench_workloads.py" in result["command"]
    assert set(result["cpu_percent_of_a_core_median"]) == {"without", "with", "added"}
    assert "median added cost" in capsys.readouterr().out


def test_prefill_cache_benchmark_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tiny sweep of bench/bench_prefill_cache.py: the exporter path and the fit run, the results say what the
    all-prompt reading gets wrong (about the hit rate) next to the computed-token reading."""
    bench = load("bench_prefill_cache")
    bench.main(["--nodes", "1", "--days", "0.5", "--rates", "0,0.6", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "bench_prefill_cache.json").read_text())
    assert {"command", "commit", "time", "machine"} <= set(result["run"])
    low, high = result["rates"]
    assert high["observed_hit_rate"] == pytest.approx(0.6, abs=0.06)
    assert high["all_prompt"]["median_error"] == pytest.approx(0.6, abs=0.1)   # biased by the hit rate
    assert high["wattfleet"]["median_error"] < 0.1 and low["wattfleet"]["median_error"] < 0.1
    assert (tmp_path / "bench_prefill_cache.md").read_text().startswith("# J per computed prefill token")
    assert "cache hit rate" in capsys.readouterr().out
