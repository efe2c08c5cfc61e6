"""`wattfleet demo`: the README's main job runs end to end and its totals match the simulated truth."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest

from shared_data import EIA_DIR, TRACES_DIR, needs_ciso, needs_traces
from wattfleet import data
from wattfleet.aggregator.config.load import load_facility
from wattfleet.cli import main
from wattfleet.demo import facility_yaml, node_names, prepare_grid, prepare_trace, previous_month
from wattfleet.sim.load import load_trace


def test_demo_writes_report_and_dashboards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["demo", "--out", str(out), "--month", "2026-10", "--days", "0.5", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for rel in ("report/report.md", "report/report.html", "report/report.pdf", "report/cfe_heatmap.png",
                "report/scopes.png", "report/ghg_summary.csv",
                "report/ghg_summary.parquet", "dashboards/dashboards/wattfleet-fleet.json", "facility.yaml"):
        assert (out / rel).is_file(), rel
    assert "IT energy" in printed and "report:" in printed
    json.loads((out / "dashboards/dashboards/wattfleet-fleet.json").read_text())
    report = (out / "report/report.md").read_text()
    # The budget shows its burn, and the simulated engines (wattfleet.sim.engines) fill the inference sections:
    # SGLang and TGI through phase time, vLLM through its tokens.
    budget = next(row for row in report.splitlines() if row.startswith("| site | dc-miso | 2026-10 |"))
    assert float(budget.split("|")[5]) > 0
    assert "No inference telemetry this month" not in report
    for engine, model in (("vllm", "meta-llama/Llama-3.1-8B-Instruct"), ("sglang", "Qwen/Qwen3-32B"),
                          ("tgi", "mistralai/Mistral-7B-Instruct-v0.3")):
        assert f"| {engine} | {model} | prefill |" in report, engine
    # The simulated pods (wattfleet.sim.pods) are attributed by the exporter's workload collector: the By team
    # section and the chargeback table name the config's teams, with the energy of no workload in parentheses.
    by_team = report.split("## By team", 1)[1].split("\n## ", 1)[0]
    teams = [row.split("|")[1].strip() for row in by_team.splitlines() if row.startswith("| ") and "---" not in row]
    assert teams[0] == "Team" and sorted(teams[1:]) == ["(idle)", "(system)", "(unallocated)", "ml-research",
                                                        "platform", "search"], teams
    with (out / "report/chargeback_by_team.csv").open(newline="") as f:
        charged = {r["team"]: float(r["it_kwh"]) for r in csv.DictReader(f)}
    assert charged["ml-research"] > charged["search"] > charged["platform"] > 0, charged
    con = duckdb.connect(str(out / "wattfleet.duckdb"), read_only=True)
    try:
        row = con.execute("SELECT count(DISTINCT hour_utc), sum(it_kwh) FROM fact_device_hour").fetchone()
        # Per node and hour, the workload rows are a split of the device facts: they add up to them.
        split = con.execute(
            "SELECT d.node, d.hour_utc, d.it_kwh, w.it_kwh, d.scope2_location_g, w.scope2_location_g "
            "FROM (SELECT node, hour_utc, sum(it_kwh) AS it_kwh, sum(scope2_location_g) AS scope2_location_g "
            "      FROM fact_device_hour GROUP BY ALL) d "
            "LEFT JOIN (SELECT node, hour_utc, sum(it_kwh) AS it_kwh, sum(scope2_location_g) AS scope2_location_g "
            "      FROM fact_workload_hour GROUP BY ALL) w USING (node, hour_utc)").fetchall()
        unattributed = con.execute("SELECT count(*) FROM fact_workload_hour WHERE share = 'unattributed'").fetchone()
    finally:
        con.close()
    assert row is not None
    hours, it_kwh = row
    assert hours == 12 and it_kwh > 0
    assert len(split) == 3 * 12 and unattributed == (0,)
    for node, hour, device_kwh, workload_kwh, device_g, workload_g in split:
        assert workload_kwh == pytest.approx(device_kwh, rel=1e-9), (node, hour)
        assert workload_g == pytest.approx(device_g, rel=1e-9), (node, hour)
    # IT energy is the sensors' energy plus the configured 10% unmetered overhead, nothing lost or doubled.
    line = next(ln for ln in printed.splitlines() if ln.startswith("IT energy"))
    it, truth = float(line.split()[2]), float(line.split("truth ")[1].split()[0])
    assert it == pytest.approx(truth * 1.1, rel=2e-3)


def test_demo_rerun_starts_from_an_empty_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["demo", "--out", str(tmp_path), "--month", "2026-10", "--days", "0.25", "--no-progress"]
    assert main(args) == 0
    first = capsys.readouterr().out.splitlines()[1]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[1] == first


def test_demo_config_is_a_valid_facility_config(tmp_path: Path) -> None:
    path = tmp_path / "facility.yaml"
    grid_dir, _ = prepare_grid(tmp_path)
    path.write_text(facility_yaml("2026-10", grid_dir, 5))
    cfg = load_facility(path)
    assert len(cfg.sites) == 3
    assert "source: static" not in path.read_text()  # every site has its zone's shipped hourly file
    assert node_names(4) == ["node-0000", "node-0001", "node-0002", "node-0003"]


def test_previous_month_crosses_years() -> None:
    from datetime import date
    assert previous_month(date(2026, 1, 15)) == "2025-12"
    assert previous_month(date(2026, 11, 23)) == "2026-10"


def test_demo_rejects_bad_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--nodes", "0"]) == 2
    assert "--nodes" in capsys.readouterr().err


def test_demo_says_where_its_data_came_from(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATTFLEET_GRID_DIR", raising=False)
    monkeypatch.delenv("WATTFLEET_WORKLOAD_TRACE", raising=False)
    assert main(["demo", "--out", str(tmp_path), "--month", "2026-10", "--days", "0.1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "grid:       U.S. EIA-930" in printed and "shipped with wattfleet" in printed
    assert "workload:   Alibaba" in printed
    assert f"path: {tmp_path.resolve() / 'grid-eia930-2022' / 'CISO.csv'}," in (tmp_path / "facility.yaml").read_text()


def test_demo_takes_your_grid_dir_and_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    mine = data.extract_grid(tmp_path / "mine")
    trace = tmp_path / "trace.csv"
    trace.write_text("index,cpu_load\n" + "".join(f"{h},0.5\n" for h in range(48)))
    monkeypatch.setenv("WATTFLEET_WORKLOAD_TRACE", str(trace))
    out = tmp_path / "out"
    assert main(["demo", "--out", str(out), "--month", "2026-10", "--days", "0.1", "--no-progress",
                 "--grid-dir", str(mine)]) == 0
    printed = capsys.readouterr().out
    assert f"grid:       {mine} (yours)" in printed and f"workload:   {trace} (yours)" in printed
    assert f"path: {mine.resolve() / 'BPAT.csv'}," in (out / "facility.yaml").read_text()
    assert not (out / "grid-eia930-2022").exists()


def test_shipped_grid_files_cover_every_zone_and_decompress(tmp_path: Path) -> None:
    assert data.grid_zones() == ["AZPS", "BPAT", "CISO", "MISO", "NYIS", "SOCO", "WAAT"]
    out = data.extract_grid(tmp_path)
    assert sorted(p.name for p in out.iterdir()) == [f"{z}.csv" for z in data.grid_zones()]
    first = (out / "CISO.csv").stat().st_mtime_ns
    data.extract_grid(tmp_path)  # a rerun leaves the files alone
    assert (out / "CISO.csv").stat().st_mtime_ns == first


@needs_ciso
def test_shipped_grid_files_are_the_shared_files(tmp_path: Path) -> None:
    out = data.extract_grid(tmp_path)
    for zone in data.grid_zones():
        assert (out / f"{zone}.csv").read_bytes() == (EIA_DIR / f"{zone}.csv").read_bytes(), zone


@needs_traces
@pytest.mark.parametrize("month", ["2026-10", "2024-10"])
def test_shipped_trace_plays_as_the_full_trace_in_october(tmp_path: Path, month: str) -> None:
    """Over the demo's default month (October), the rotated excerpt reads exactly as the full trace.

    The simulator reads hour h of the year (shifted by up to 2 h per node, interpolated to the next
    hour) at row h mod len(trace); the excerpt is rows 6528..7319 of the full trace.
    """
    from datetime import datetime, timezone

    full = load_trace(TRACES_DIR / "Alibaba_CPU_Data_Hourly_1.csv")
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=timezone.utc)
    path, _ = prepare_trace(tmp_path, start)
    rotated = load_trace(path)
    assert len(rotated) == 792
    first = 6552 if month == "2026-10" else 6576  # hour of the year of 1 October
    for h in range(first - 3, first + 31 * 24 + 4):
        assert rotated[h % len(rotated)] == full[h - first + 6552], h
