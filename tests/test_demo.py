"""`wattfleet demo`: the README's main job runs end to end and its totals match the simulated truth."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from wattfleet.cli import main
from wattfleet.demo import facility_yaml, find_grid_dir, node_names, previous_month
from wattfleet.aggregator.config.load import load_facility


def test_demo_writes_report_and_dashboards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["demo", "--out", str(out), "--month", "2026-10", "--days", "0.5", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for rel in ("report/report.md", "report/report.html", "report/scopes.png", "report/ghg_summary.csv",
                "report/ghg_summary.parquet", "dashboards/dashboards/wattfleet-fleet.json", "facility.yaml"):
        assert (out / rel).is_file(), rel
    assert "IT energy" in printed and "report:" in printed
    json.loads((out / "dashboards/dashboards/wattfleet-fleet.json").read_text())
    report = (out / "report/report.md").read_text()
    # The budget shows its burn, and the (empty) inference section says why it is empty.
    budget = next(l for l in report.splitlines() if l.startswith("| site | dc-miso | 2026-10 |"))
    assert float(budget.split("|")[5]) > 0
    assert "No inference telemetry this month" in report
    con = duckdb.connect(str(out / "wattfleet.duckdb"), read_only=True)
    try:
        hours, it_kwh = con.execute("SELECT count(DISTINCT hour_utc), sum(it_kwh) FROM fact_device_hour").fetchone()
    finally:
        con.close()
    assert hours == 12 and it_kwh > 0
    # IT energy is the sensors' energy plus the configured 10% unmetered overhead, nothing lost or doubled.
    line = next(l for l in printed.splitlines() if l.startswith("IT energy"))
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
    path.write_text(facility_yaml("2026-10", find_grid_dir(), 5))
    cfg = load_facility(path)
    assert len(cfg.sites) == 3
    assert node_names(4) == ["node-0000", "node-0001", "node-0002", "node-0003"]


def test_previous_month_crosses_years() -> None:
    from datetime import date
    assert previous_month(date(2026, 1, 15)) == "2025-12"
    assert previous_month(date(2026, 11, 23)) == "2026-10"


def test_demo_rejects_bad_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--nodes", "0"]) == 2
    assert "--nodes" in capsys.readouterr().err
