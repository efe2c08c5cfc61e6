"""`.ci/setup` works where the system Python is externally managed (PEP 668: Debian 12, Ubuntu 24.04).

Where such an interpreter exists (Debian's ``/usr/bin/python3`` carries the ``EXTERNALLY-MANAGED``
marker), the test shows that ``pip install`` into it is refused, then runs set-up's venv step with
it and gets a working ``wattfleet``. Kept fast: no Debian packages, and the wheel built once is
installed ``--no-deps --no-index`` (``wattfleet --version`` needs nothing beyond the package).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from paths import REPO

CANDIDATES = ("/usr/bin/python3", shutil.which("python3") or "", shutil.which("python3.12") or "")
MARKER = "import os, sysconfig; print(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED'))"


def _externally_managed() -> str | None:
    for python in dict.fromkeys(c for c in CANDIDATES if c and os.access(c, os.X_OK)):
        try:
            marker = subprocess.run([python, "-I", "-c", MARKER], capture_output=True, text=True, timeout=30,
                                    check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if Path(marker).is_file():
            return python
    return None


def _clean_env(**extra: str) -> dict[str, str]:
    """No venv, no pip override of PEP 668: what a fresh shell on the machine has."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"VIRTUAL_ENV", "PIP_BREAK_SYSTEM_PACKAGES", "PYTHONPATH", "PYTHONHOME", "PIP_USER"}}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if "/.venv/" not in p)
    env.update(extra)
    return env


SYSTEM_PYTHON = _externally_managed()
needs_managed = pytest.mark.skipif(SYSTEM_PYTHON is None,
                                   reason="no externally managed (PEP 668) Python here, e.g. Debian's /usr/bin/python3")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wheel_build import build_wheel

    return build_wheel(tmp_path_factory.mktemp("wheel"))


@needs_managed
def test_pip_refuses_the_system_python(wheel: Path) -> None:
    assert SYSTEM_PYTHON is not None
    if subprocess.run([SYSTEM_PYTHON, "-m", "pip", "--version"], capture_output=True, env=_clean_env()).returncode:
        pytest.skip(f"{SYSTEM_PYTHON} has no pip (Debian's python3-pip); the marker alone refuses installs")
    # --dry-run: should the marker not be honoured, nothing is installed into the system anyway.
    result = subprocess.run([SYSTEM_PYTHON, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index",
                             str(wheel)], capture_output=True, text=True, env=_clean_env(), timeout=120)
    assert result.returncode != 0
    assert "externally-managed-environment" in result.stdout + result.stderr


@needs_managed
def test_setup_makes_a_venv_with_the_system_python(wheel: Path, tmp_path: Path) -> None:
    assert SYSTEM_PYTHON is not None
    if subprocess.run([SYSTEM_PYTHON, "-c", "import ensurepip"], capture_output=True).returncode:
        pytest.skip(f"{SYSTEM_PYTHON} lacks ensurepip; set-up apt-get installs python3-venv for it")
    venv = tmp_path / "venv"
    env = _clean_env(PYTHON=SYSTEM_PYTHON, WATTFLEET_VENV=str(venv), WATTFLEET_SKIP_APT="1",
                     WATTFLEET_INSTALL=f"--no-deps --no-index {wheel}")
    for _ in range(2):  # idempotent: the second run reuses the venv
        result = subprocess.run(["bash", str(REPO / ".ci" / "setup")], capture_output=True, text=True, env=env,
                                timeout=300)
        assert result.returncode == 0, result.stderr
        assert re.fullmatch(rf"wattfleet set up: {re.escape(str(venv))}/bin/wattfleet \(wattfleet \S+\)",
                            result.stdout.strip()), result.stdout
    version = subprocess.run([str(venv / "bin" / "wattfleet"), "--version"], capture_output=True, text=True,
                             env=_clean_env(), timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("wattfleet ")
    base = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print(sys.base_prefix)"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert Path(SYSTEM_PYTHON).resolve().is_relative_to(Path(base).resolve())  # made from the managed one


def test_setup_keeps_installing_the_debian_servers() -> None:
    text = (REPO / ".ci" / "setup").read_text()
    for package in ("prometheus", "prometheus-node-exporter", "victoria-metrics", "openssl", "python3-venv"):
        assert package in text
    assert "pip install" in text and "-m venv" in text
    assert "--break-system-packages" not in text
