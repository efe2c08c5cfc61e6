"""`wattfleet plan` end to end on a facility config pointing at the real EIA-930 files, and plan_json."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fixtures.agg.planning_inputs import two_site_yaml
from shared_data import EIA_DIR as DATA
from wattfleet.aggregator.config.checker import FacilityConfigError
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.planning.errors import PlanError
from wattfleet.aggregator.planning.plan import plan_json
from wattfleet.cli import main

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared EIA-930 data not present")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    p = tmp_path / "facility.yaml"
    p.write_text(two_site_yaml(sfo_replay_year=2022))
    return p


ARGS = ["plan", "--duration", "6h", "--energy", "1.2MWh", "--sites", "sfo,chi", "--by", "2026-11-30",
        "--after", "2026-11-23T09:10:00Z"]


def test_plan_text_says_history_and_signal(config, capsys):
    assert main(ARGS + ["--config", str(config), "--cost", "sfo=0.12", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "HISTORY mode" in out and "AVERAGE intensity" in out
    assert "start from 2026-11-23 10:00" in out and "finish by 2026-12-01 00:00" in out
    assert out.count("\n  1  ") + out.count("\n  2  ") + out.count("\n  3  ") == 3
    assert "172.80" in out  # 1,200 kWh x 1.2 x 0.12


def test_plan_json_matches_cli_json(config, capsys):
    assert main(ARGS + ["--config", str(config), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    direct = plan_json(load_facility(config), ["sfo", "chi"], "6h", "1.2MWh", "2026-11-30",
                       earliest=datetime(2026, 11, 23, 9, 10, tzinfo=timezone.utc))
    assert cli["best"] == direct["best"]
    assert cli["sites"][1]["mode"] == "history" and cli["sites"][1]["starts"] == 177
    assert cli["best"]["kg_co2e"] <= min(s["best"]["kg_co2e"] for s in cli["sites"])


def test_plan_errors_are_clear(config, capsys):
    assert main(["plan", "--duration", "6h", "--energy", "1MWh", "--sites", "nope", "--by", "2026-11-30",
                 "--config", str(config)]) == 2
    assert "unknown site 'nope'" in capsys.readouterr().err
    assert main(["plan", "--duration", "soon", "--energy", "1MWh", "--sites", "sfo", "--by", "2026-11-30",
                 "--config", str(config)]) == 2
    assert "--duration" in capsys.readouterr().err
    assert main(["plan", "--duration", "6h", "--energy", "1MWh", "--sites", "sfo", "--by", "2026-11-23",
                 "--after", "2026-11-23T20:00:00Z", "--config", str(config)]) == 2
    assert "cannot finish" in capsys.readouterr().err


def test_plan_json_rejects_bad_input(config):
    with pytest.raises(PlanError):
        plan_json(load_facility(config), ["sfo"], "6h", "lots", "2026-11-30")


def test_costs_and_flexible_work_from_the_facility_config(config, capsys):
    """`cost_per_kwh` per site and a top-level `flexible:` list, read by the facility loader."""
    text = config.read_text().replace("    pue: 1.2\n", "    pue: 1.2\n    cost_per_kwh: 0.12\n", 1)
    config.write_text(text + "flexible:\n  - {namespace: batch-*, window_hours: 24, sites: [sfo, chi]}\n")
    cfg = load_facility(config)
    assert cfg.sites["sfo"].cost_per_kwh == 0.12 and cfg.sites["chi"].cost_per_kwh is None
    assert [(f.kind, f.match, f.sites) for f in cfg.flexible] == [("namespace", "batch-*", ("sfo", "chi"))]
    assert main(ARGS + ["--config", str(config), "--top", "3"]) == 0
    assert "172.80" in capsys.readouterr().out  # 1,200 kWh x PUE 1.2 x 0.12, from the config
    config.write_text(text + "flexible:\n  - {namespace: batch-*, sites: [sfo, mars]}\n")
    with pytest.raises(FacilityConfigError, match=r"facility.yaml:\d+: flexible\[0\]\.sites: unknown site"):
        load_facility(config)
    config.write_text(text.replace("cost_per_kwh: 0.12", "cost_per_kwh: -1"))
    with pytest.raises(FacilityConfigError, match=r"cost_per_kwh: must be >= 0"):
        load_facility(config)
