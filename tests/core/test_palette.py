"""One palette for the report's charts and the dashboards: the same scope has the same colour everywhere."""

from __future__ import annotations

import re

import pytest

from wattfleet.core.palette import CATEGORY_COLOURS, QUANTITY_COLOURS, SCOPE_COLOURS, category_colour, colour
from wattfleet.dashboards import sustainability


def test_each_scope_view_has_its_own_colour_and_no_quantity_reuses_one():
    views = ("scope1", "scope2_location", "scope2_market", "scope3_embodied", "scope3_upstream")
    assert len({SCOPE_COLOURS[k] for k in views}) == len(views)
    assert not set(QUANTITY_COLOURS.values()) & set(SCOPE_COLOURS.values())
    assert not set(CATEGORY_COLOURS) & set(SCOPE_COLOURS.values())
    assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in [*SCOPE_COLOURS.values(), *QUANTITY_COLOURS.values()])
    assert category_colour(len(CATEGORY_COLOURS)) == CATEGORY_COLOURS[0]
    with pytest.raises(KeyError, match="palette"):
        colour("scope4")


def test_the_sustainability_dashboard_draws_scopes_in_the_palette_colours():
    panels = sustainability.build().to_json_data()["panels"]
    for scope, title in sustainability.SCOPES:
        stat = next(p for p in panels if p.title == title)
        assert stat.thresholds[0]["color"] == SCOPE_COLOURS[scope]
    series = next(p for p in panels if p.title == "Emissions by scope, month to date")
    fixed = {o["matcher"]["options"]: o["properties"][0]["value"]["fixedColor"] for o in series.overrides}
    assert fixed == {f"^{scope} .*": SCOPE_COLOURS[scope] for scope, _ in sustainability.SCOPES}
