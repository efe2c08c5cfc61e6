"""``wattfleet dashboards build``: what it writes, the Helm chart copy, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from wattfleet.cli import main
from wattfleet.dashboards import provisioning
from wattfleet.dashboards.build import ALERTS_FILE, BUILDERS, HOURLY_ENERGY_FILE, RECORDING_FILE, render
from wattfleet.dashboards.cli import DEFAULT_CHART
from wattfleet.dashboards.rules import RuleConfig

EXPECTED = sorted([f"dashboards/{n}.json" for n in BUILDERS] + [
    "provisioning/datasources/wattfleet.yaml", "provisioning/dashboards/wattfleet.yaml",
    RECORDING_FILE, ALERTS_FILE, HOURLY_ENERGY_FILE])


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_build_writes_dashboards_provisioning_and_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "build", "--out", str(tmp_path), "--prometheus-url", "http://prom:9090",
                 "--dashboards-path", "/dash"]) == 0
    assert _files(tmp_path) == EXPECTED
    assert len(capsys.readouterr().out.splitlines()) == len(EXPECTED)
    for name in BUILDERS:
        assert json.loads((tmp_path / f"dashboards/{name}.json").read_text())["uid"] == name
    ds = yaml.safe_load((tmp_path / "provisioning/datasources/wattfleet.yaml").read_text())
    assert ds["apiVersion"] == 1
    assert ds["datasources"][0].items() >= {"type": "prometheus", "url": "http://prom:9090",
                                            "uid": provisioning.DATASOURCE_UID,
                                            "name": provisioning.DATASOURCE_NAME}.items()
    prov = yaml.safe_load((tmp_path / "provisioning/dashboards/wattfleet.yaml").read_text())
    assert prov["providers"][0]["type"] == "file" and prov["providers"][0]["options"]["path"] == "/dash"
    for rel in (RECORDING_FILE, ALERTS_FILE, HOURLY_ENERGY_FILE):
        assert yaml.safe_load((tmp_path / rel).read_text())["groups"]


def test_flags_reach_the_rules(tmp_path: Path) -> None:
    assert main(["dashboards", "build", "--out", str(tmp_path), "--carbon-burn-rate-target", "2",
                 "--idle-power-watts", "150", "--rate-window", "2m"]) == 0
    alerts = {a["alert"]: a for g in yaml.safe_load((tmp_path / ALERTS_FILE).read_text())["groups"]
              for a in g["rules"]}
    assert alerts["WattfleetCarbonBudgetBurnRate"]["expr"].endswith("> 2")
    assert "> 150" in alerts["WattfleetGpuIdlePowerBurn"]["expr"]
    assert "[2m]" in (tmp_path / RECORDING_FILE).read_text()


def test_helm_chart_copy_replaces_stale_generated_files(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "files/dashboards").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: x\nversion: 0.1.0\n")
    (chart / "files/dashboards/wattfleet-retired.json").write_text("{}")
    (chart / "files/dashboards/site-custom.json").write_text("{}")
    assert main(["dashboards", "build", "--helm-chart", str(chart)]) == 0
    assert _files(chart / "files") == sorted(
        ["dashboards/site-custom.json"] + [p for p in EXPECTED if p.startswith(("dashboards/", "rules/"))])


@pytest.mark.parametrize("argv, message", [
    ([], "give --out DIR and/or --helm-chart"),
    (["--out", "{tmp}", "--idle-utilization", "1.5"], "--idle-utilization must be between 0 and 1"),
    (["--out", "{tmp}", "--carbon-burn-rate-target", "0"], "--carbon-burn-rate-target must be positive"),
    (["--helm-chart", "{tmp}"], "not a Helm chart (no Chart.yaml)"),
    (["--out", "{tmp}", "--rate-window", "1 minute"], "--rate-window '1 minute' is not a Prometheus duration"),
    (["--out", "{tmp}", "--idle-for", "m5"], "--idle-for 'm5' is not a Prometheus duration"),
    (["--out", "{tmp}", "--carbon-burn-rate-window", ""], "--carbon-burn-rate-window '' is not a Prometheus"),
    (["--out", "{tmp}", "--idle-power-watts", "-1"], "--idle-power-watts must not be negative"),
])
def test_bad_arguments_exit_2_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   argv: list[str], message: str) -> None:
    assert main(["dashboards", "build", *[a.format(tmp=tmp_path) for a in argv]]) == 2
    assert message in capsys.readouterr().err


def test_dashboards_without_an_action_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards"]) == 2
    assert "build" in capsys.readouterr().out


def test_chart_files_in_the_repository_are_current() -> None:
    """helm/wattfleet/files/ is generated: rerun `wattfleet dashboards build --helm-chart` after changes."""
    files = render(RuleConfig())
    shipped = {rel for rel in files if rel.startswith(("dashboards/", "rules/"))}
    for rel in shipped:
        path = DEFAULT_CHART / "files" / rel
        assert path.is_file() and path.read_text() == files[rel], \
            f"{path} is stale: run `wattfleet dashboards build --helm-chart`"
    # The chart templates glob these folders: anything else there (a placeholder, a retired
    # dashboard) would ship as a ConfigMap or a duplicate rule group.
    assert _files(DEFAULT_CHART / "files") == sorted(shipped)


def test_build_refuses_a_panel_reading_a_metric_the_catalog_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from grafanalib import core as g

    from wattfleet.dashboards import build
    from wattfleet.dashboards.base import dashboard
    from wattfleet.dashboards.panels import WATT, Layout, Query

    def typo() -> g.Dashboard:
        lay = Layout()
        lay.stat("GPU power", WATT, [Query("sum(wattfleet_gpu_power_wats)")])
        return dashboard("typo", "typo", lay, "a misspelt metric")

    monkeypatch.setitem(build.BUILDERS, "wattfleet-fleet", typo)
    assert main(["dashboards", "build", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "typo: wattfleet_gpu_power_wats is neither in the metric catalog nor a recording rule" in err
    assert list(tmp_path.iterdir()) == []  # nothing half-written
