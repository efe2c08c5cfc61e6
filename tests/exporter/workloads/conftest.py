"""Fixtures for workload attribution: a short socket directory and a fake node (NVML, RAPL, cgroups, kubelet)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("grpc", reason="the kubernetes extra (grpcio, protobuf) is not installed")


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short temporary directory: a unix socket path must stay under 108 bytes."""
    d = Path(tempfile.mkdtemp(prefix="wf-kubelet-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)
