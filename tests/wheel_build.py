"""Build wattfleet's wheel from the checkout, once per test session, for packaging and set-up tests."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from functools import lru_cache
from pathlib import Path

from paths import REPO


def _backend_installed() -> bool:
    """Whether this interpreter's setuptools meets pyproject's build requirement (then no isolation)."""
    try:
        import setuptools
    except ImportError:
        return False
    need = next(r for r in tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
                if r.startswith("setuptools"))
    minimum = tuple(int(x) for x in need.split(">=")[1].split("."))
    have = tuple(int(x) for x in setuptools.__version__.split(".")[:len(minimum)] if x.isdigit())
    return have >= minimum


@lru_cache(maxsize=None)
def build_wheel(dest: Path) -> Path:
    """``pip wheel`` the checkout into ``dest``; build isolation (PyPI) only if setuptools here is too old."""
    isolation = [] if not _backend_installed() else ["--no-build-isolation"]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q",
                    "--disable-pip-version-check", "-w", str(dest), str(REPO)], check=True, capture_output=True)
    return next(dest.glob("wattfleet-*.whl"))
