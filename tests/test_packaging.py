"""One distribution, one namespace: every package listed, SQL shipped, README and CI agree."""

from __future__ import annotations

import re
import subprocess
import sys
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


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- test-command -->\s*```(?:sh|bash)?\n(.+?)\n```", readme, re.S)
    assert match, "README.md has no <!-- test-command --> block"
    command = match.group(1).strip()
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()


@pytest.mark.slow
def test_wheel_ships_sql_and_every_package(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("wattfleet-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "wattfleet/exporter/catalog.py" in names
    assert "wattfleet/cli.py" in names
    sql_files = {p.name for p in (ROOT / "sql").rglob("*.sql")}
    shipped = {Path(n).name for n in names if n.startswith("wattfleet/sql/") and n.endswith(".sql")}
    assert sql_files <= shipped
    assert not any(n.startswith(("exporter/", "aggregator/")) for n in names)  # no top-level shadowing


def test_dockerfile_copies_every_package_folder() -> None:
    """The chart's image installs from the same folders the wheel is built from."""
    folders = set(PACKAGE_DIR.values())
    copied = set(re.findall(r"^COPY (\S+) ", (ROOT / "Dockerfile").read_text(), flags=re.M))
    assert folders <= copied, f"Dockerfile does not COPY {sorted(folders - copied)}"
