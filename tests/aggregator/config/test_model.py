"""The questions asked of a loaded config: PUE at an hour, the site of a node."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wattfleet.aggregator.config.model import FacilityConfig, PueMeter, Scope1Source, Site
from wattfleet.aggregator.planning.estimators import site_pue_at

UTC = timezone.utc
H0 = datetime(2026, 10, 1, tzinfo=UTC)


def site(name: str, nodes: tuple[str, ...] = (), meters: tuple[PueMeter, ...] = ()) -> Site:
    return Site(name, "CISO", {"source": "static"}, 1.5, meters, 1.0, None, None, 0.0, nodes, 0.0, 0.0)


def test_metered_hours_use_the_meter_and_others_the_default():
    s = site("a", meters=(PueMeter(H0, H0 + timedelta(hours=1), 120.0, 100.0),))
    assert site_pue_at(s, H0)[0] == pytest.approx(1.2)
    assert site_pue_at(s, H0 + timedelta(hours=1))[0] == 1.5
    assert site_pue_at(s, H0 - timedelta(hours=1))[0] == 1.5


def test_node_globs_in_file_order_then_the_site_label():
    cfg = FacilityConfig("f.yaml", {"a": site("a", ("gpu-*",)), "b": site("b", ("gpu-1*", "cpu-*"))})
    assert cfg.site_for_node("gpu-17") == "a"
    assert cfg.site_for_node("cpu-3") == "b"
    assert cfg.site_for_node("other", "b") == "b"
    assert cfg.site_for_node("other", "mars") is None
    assert cfg.zones() == ["CISO"]


def test_scope1_is_quantity_times_factor():
    assert Scope1Source("a", "diesel", H0.date(), 100.0, 2.68).kg_co2e == pytest.approx(268.0)
