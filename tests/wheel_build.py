"""Build wattfleet's wheel from the checkout, once per test session, for packaging and set-up tests."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from paths import REPO

# tomllib is Python 3.11+; wattfleet itself supports 3.10, where the tests that build the wheel are skipped.
tomllib = pytest.importorskip("tomllib")


def _backend_installed() -> bool:
    """Whether this interpreter's setuptools meets pyproject's build requirement (then no isolation)."""
    try:
        installed = version("setuptools")
    except PackageNotFoundError:
        return False
    need = next(r for r in tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
                if r.startswith("setuptools"))
    minimum = tuple(int(x) for x in need.split(">=")[1].split("."))
    have = tuple(int(x) for x in installed.split(".")[:len(minimum)] if x.isdigit())
    return have >= minimum


@cache
def build_wheel(dest: Path) -> Path:
    """``pip wheel`` the checkout into ``dest``; build isolation (PyPI) only if setuptools here is too old."""
    isolation = [] if not _backend_installed() else ["--no-build-isolation"]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q",
                    "--disable-pip-version-check", "-w", str(dest), str(REPO)], check=True, capture_output=True)
    return next(dest.glob("wattfleet-*.whl"))
