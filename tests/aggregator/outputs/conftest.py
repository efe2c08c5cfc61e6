"""Fixtures the output tests take as parameters, found by pytest in this conftest (no import into each test)."""

from fixtures.agg.disclosure_fleet import fleet  # noqa: F401 - a pytest fixture: pytest registers it by its name here
