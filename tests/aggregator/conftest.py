"""Fixtures the aggregator tests take as parameters, found by pytest in this conftest (no import into each test)."""

from fixtures.agg.e2e import cfg, prom  # noqa: F401 - pytest fixtures: pytest registers them by their names here
