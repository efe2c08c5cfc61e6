"""Where tests find the repository and their fixture files, wherever the test module sits in ``tests/``."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
FACILITY_EXAMPLE = REPO / "aggregator" / "config" / "facility.example.yaml"
