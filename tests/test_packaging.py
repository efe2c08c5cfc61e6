"""One distribution, one namespace: every package listed, SQL shipped, README and CI agree."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

# tomllib is Python 3.11+; wattfleet itself supports 3.10, where these tests are skipped.
tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIR = PYPROJECT["tool"]["setuptools"]["package-dir"]


def _expected_packages() -> set[str]:
    found = set()
    for package, folder in PACKAGE_DIR.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *rel.parts]) if rel.parts else package)
    return found


def test_every_package_folder_is_listed() -> None:
    assert _expected_packages() == set(PYPROJECT["tool"]["setuptools"]["packages"])


def _quick_start_commands() -> tuple[str, str]:
    """README's set-up command (the first code block of Quick start) and its marked test command."""
    readme = (ROOT / "README.md").read_text()
    quick = readme[readme.index("## Quick start"):]
    setup = re.search(r"```(?:sh|bash)?\n(.+?)\n```", quick, re.S)
    command = re.search(r"<!-- test-command -->\s*```(?:sh|bash)?\n(.+?)\n```", readme, re.S)
    assert setup, "README.md's Quick start has no code block"
    assert command, "README.md has no <!-- test-command --> block"
    return setup.group(1).strip(), command.group(1).strip()


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- test-command -->\s*```(?:sh|bash)?\n(.+?)\n```", readme, re.S)
    assert match, "README.md has no <!-- test-command --> block"
    command = match.group(1).strip()
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_ci_runs_the_readme_setup_command_before_the_tests() -> None:
    setup, command = _quick_start_commands()
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert setup == "bash .ci/setup"
    assert lines.index(setup) < lines.index(command)
    # The tests run in set-up's venv, never on the (externally managed) system Python.
    assert command.startswith(".venv/bin/")


@pytest.mark.slow
def test_wheel_ships_sql_and_every_package(tmp_path: Path) -> None:
    from wheel_build import build_wheel

    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "wattfleet/exporter/cli.py" in names and "wattfleet/core/catalog.py" in names
    assert "wattfleet/cli.py" in names
    sql_files = {p.name for p in (ROOT / "sql").rglob("*.sql")}
    shipped = {Path(n).name for n in names if n.startswith("wattfleet/sql/") and n.endswith(".sql")}
    assert sql_files <= shipped
    assert not any(n.startswith(("exporter/", "aggregator/")) for n in names)  # no top-level shadowing
    # The demo's embedded data: every zone's EIA-930 file, the workload excerpt, their notice.
    data = {p.relative_to(ROOT).as_posix() for p in (ROOT / "wattfleet" / "data").rglob("*")
            if p.is_file() and p.suffix in {".gz", ".md"}}
    assert len([d for d in data if d.startswith("wattfleet/data/grid-eia930-2022/")]) == 7
    assert data <= set(names)


def test_license_is_an_spdx_expression() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert any(r.startswith("setuptools>=77") for r in PYPROJECT["build-system"]["requires"])
    for pattern in PYPROJECT["project"].get("license-files", []):
        assert list(ROOT.glob(pattern)), pattern


def test_exporter_needs_only_the_base_dependencies() -> None:
    """The analytics stack is in extras; base is what exporter, core and simulator import."""
    base = {re.split(r"[<>=!~;\[ ]", d)[0].lower() for d in PYPROJECT["project"]["dependencies"]}
    assert base == {"prometheus-client", "nvidia-ml-py", "psutil", "pyyaml", "bcrypt"}
    extras = PYPROJECT["project"]["optional-dependencies"]
    flat = {re.split(r"[<>=!~;\[ ]", d)[0].lower() for name in ("aggregator", "report", "dashboards")
            for d in extras[name]}
    assert {"duckdb", "numpy", "tqdm", "matplotlib", "fpdf2", "grafanalib"} <= flat
    assert set(extras["all"]) == {"wattfleet[aggregator,report,dashboards,kubernetes]"}
    # Per-pod GPU energy on Kubernetes: the pod-resources gRPC client, an extra the exporter image installs.
    assert {re.split(r"[<>=!~;\[ ]", d)[0].lower() for d in extras["kubernetes"]} == {"grpcio", "protobuf"}
    assert "pip install '.[kubernetes]'" in (ROOT / "Dockerfile.exporter").read_text()


DOCKERFILES = {"Dockerfile": "all", "Dockerfile.exporter": "kubernetes"}


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_copies_every_package_folder(name: str) -> None:
    """Each image installs from the same folders the wheel is built from (setuptools needs them all)."""
    text = (ROOT / name).read_text()
    copied = set(re.findall(r"^COPY (\S+) ", text, flags=re.M))
    folders = set(PACKAGE_DIR.values())
    assert folders <= copied, f"{name} does not COPY {sorted(folders - copied)}"
    # wattfleet/ is copied whole: core, sim and the demo's data go with it.
    for sub in ("wattfleet/core", "wattfleet/sim", "wattfleet/data"):
        assert (ROOT / sub / "__init__.py").is_file()
        assert any(sub == c or sub.startswith(c.rstrip("/") + "/") for c in copied), f"{name}: {sub}"


@pytest.mark.parametrize("name, extra", sorted(DOCKERFILES.items()))
def test_dockerfile_installs_its_extras_only(name: str, extra: str | None) -> None:
    installs = re.findall(r"pip install (\S+)", (ROOT / name).read_text())
    assert installs == ([f".[{extra}]"] if extra else ["."]) or installs == ([f"'.[{extra}]'"] if extra else ["."])
