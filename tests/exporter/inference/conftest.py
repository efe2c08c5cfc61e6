"""Fixtures the inference tests take as parameters, found by pytest in this conftest (no import into each test)."""

from fixtures.inference_engines import servers  # noqa: F401 - a pytest fixture: pytest registers it by its name here
