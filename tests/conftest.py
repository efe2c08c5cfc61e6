"""Shared fixtures: fake hardware and the real Prometheus binary check."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from promserver import have_prometheus


@pytest.fixture
def sysfs_root() -> Iterator[Path]:
    """A world-readable temp dir (privilege-drop tests read it as nobody)."""
    d = Path(tempfile.mkdtemp(prefix="wattfleet-sysfs-"))
    os.chmod(d, 0o755)
    yield d
    import shutil
    shutil.rmtree(d, ignore_errors=True)


class ManualClock:
    """A clock tests advance by hand, shared by fakes and the sampler."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if have_prometheus():
        return
    skip = pytest.mark.skip(reason="prometheus/promtool not installed (apt-get install prometheus)")
    for item in items:
        if "prometheus" in item.keywords:
            item.add_marker(skip)
