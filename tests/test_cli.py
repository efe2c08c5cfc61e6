"""`wattfleet` in an exporter-only install: the exporter and --help never import the analytics stack.

The optional dependencies (pyproject extras aggregator, report, dashboards) are blocked with a
``sys.meta_path`` finder in a subprocess, as if only the base dependencies were installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from wattfleet import cli
from wattfleet.core import catalog
from wattfleet.sim.fake_powercap import FakePowercap

OPTIONAL = sorted(cli.OPTIONAL_MODULES)

RUN_WITHOUT_EXTRAS = textwrap.dedent(f"""
    import sys
    BLOCKED = {OPTIONAL!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    from wattfleet.cli import main
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:  # --help, --version
        code = exc.code
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED or m.startswith(
        ("wattfleet.aggregator", "wattfleet.dashboards")))
    print("LOADED", loaded, file=sys.stderr)
    sys.exit(code)
""")


def wattfleet_without_extras(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", RUN_WITHOUT_EXTRAS, *args], capture_output=True, text=True,
                          timeout=60)


def test_help_lists_every_subcommand_without_importing_them() -> None:
    result = wattfleet_without_extras("--help")
    assert result.returncode == 0, result.stderr
    for component in cli.COMPONENTS:
        for command, _ in component.commands:
            assert command in result.stdout
    assert "LOADED []" in result.stderr


def test_exporter_help_without_extras() -> None:
    result = wattfleet_without_extras("exporter", "--help")
    assert result.returncode == 0, result.stderr
    assert "--sysfs-root" in result.stdout
    assert "LOADED []" in result.stderr


def test_exporter_once_over_fake_powercap_without_extras(sysfs_root: Path, clock) -> None:
    FakePowercap(sysfs_root, sockets=1, subdomains=(), clock=clock)
    result = wattfleet_without_extras("--log-level", "WARNING", "exporter", "--once", "--sysfs-root",
                                      str(sysfs_root), "--disable-collector", "nvml",
                                      "--disable-collector", "inference", "--node", "n1")
    assert result.returncode == 0, result.stderr
    package = [line for line in result.stdout.splitlines()
               if line.startswith(catalog.CPU_ENERGY.series + "{") and 'domain="package"' in line]
    assert package and 'node="n1"' in package[0]
    assert "LOADED []" in result.stderr


@pytest.mark.parametrize("command", ["plan", "demo"])
def test_subcommand_help_without_extras(command: str) -> None:
    """These parse their flags before importing anything optional, so --help works without the extra."""
    result = wattfleet_without_extras(command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: wattfleet {command}" in result.stdout


# The aggregator's command modules import DuckDB at the top (imports stay at the top of files unless
# a dependency is optional for that module, and DuckDB is not optional for the aggregator), as does
# dashboards/cli.py with grafanalib: without the extra even --help says which extra to install.
@pytest.mark.parametrize("command, extra", [("aggregate", "aggregator"), ("report", "aggregator"),
                                            ("serve", "aggregator"), ("disclose", "aggregator"),
                                            ("dashboards", "dashboards")])
def test_subcommand_help_without_its_extra_names_the_extra(command: str, extra: str) -> None:
    result = wattfleet_without_extras(command, "--help")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"pip install 'wattfleet[{extra}]'" in result.stderr


@pytest.mark.parametrize("command, extra", [("report", "aggregator"), ("aggregate", "aggregator"),
                                            ("dashboards", "dashboards"), ("demo", "all")])
def test_subcommand_without_its_extra_names_the_extra(command: str, extra: str, tmp_path: Path) -> None:
    facility = tmp_path / "facility.yaml"
    facility.write_text("version: 1\nsites:\n  - {name: s, zone: CISO, grid: {source: static}, pue: 1.2}\n")
    args = {
        "report": ["report", "--db", str(tmp_path / "w.duckdb"), "--config", str(facility), "--month", "2026-10",
                   "--out", str(tmp_path / "r")],
        "aggregate": ["aggregate", "--db", str(tmp_path / "w.duckdb"), "--config", str(facility),
                      "--prometheus", "http://127.0.0.1:9", "--once", "--no-progress"],
        "dashboards": ["dashboards", "build", "--out", str(tmp_path / "d")],
        "demo": ["demo", "--out", str(tmp_path / "o"), "--days", "0.1", "--no-progress"],
    }[command]
    result = wattfleet_without_extras(*args)
    assert result.returncode == 2, result.stderr
    assert f"pip install 'wattfleet[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lines_match_what_the_components_register() -> None:
    """cli.COMPONENTS repeats each subcommand's help so that --help imports nothing: keep them equal."""
    parser = cli.build_parser()
    # argparse keeps the subcommands' help in a private list; no public API lists it
    sub: Any = next(a for a in parser._actions if getattr(a, "_choices_actions", None))
    registered = [(a.dest, a.help) for a in sub._choices_actions]
    listed = [c for component in cli.COMPONENTS for c in component.commands]
    assert registered == listed


def test_version_and_bare_command() -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert cli.main([]) == 2
