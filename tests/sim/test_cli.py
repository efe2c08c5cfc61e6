"""``wattfleet simulate`` from the command line: bad input exits 2 with the reason, and a backfill."""

from __future__ import annotations

from pathlib import Path

import pytest

from wattfleet.cli import build_parser, main
from wattfleet.core import catalog
from wattfleet.sim.cli import config_from_args


def test_cli_rejects_bad_input_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--fault", "gpu_lost:gpu=1"]) == 2
    assert "field 'node' is required" in capsys.readouterr().err
    assert main(["simulate", "--gpu-models", "v100"]) == 2
    assert "unknown GPU model 'v100'" in capsys.readouterr().err


def test_cli_backfill(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b.om"
    assert main(["simulate", "--nodes", "2", "--gpus-per-node", "1", "--backfill-openmetrics", str(out),
                 "--span", "1h", "--step", "5m", "--end", "2022-03-01T00:00:00Z", "--with-corrections"]) == 0
    text = out.read_text()
    assert catalog.COUNTER_WRAPS.series in text and text.endswith("# EOF\n")
    assert "promtool tsdb create-blocks-from openmetrics" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--replicas", "0"], "--replicas must be at least 1"),
    (["--step", "2h"], "no longer than --span"),
    (["--pods"], "--pods is for live serving"),
])
def test_cli_backfill_rejects_bad_replicas_and_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     extra: list[str], message: str) -> None:
    args = ["simulate", "--nodes", "1", "--backfill-openmetrics", str(tmp_path / "x.om"), "--span", "1h", *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_cli_pods_flag_gives_a_fleet_with_pods() -> None:
    args = build_parser().parse_args(["simulate", "--pods"])
    assert config_from_args(args).pods and not config_from_args(build_parser().parse_args(["simulate"])).pods
