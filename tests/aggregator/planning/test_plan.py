"""A plan from a facility config: sites, prices and grid specs wired to the ranking."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from wattfleet.aggregator.config.model import FacilityConfig, Site
from wattfleet.aggregator.grid.model import IntensityRow, Signal
from wattfleet.aggregator.planning.cli import format_plan
from wattfleet.aggregator.planning.plan import plan_facility

UTC = timezone.utc


def test_marginal_sub_spec_is_preferred_for_deciding():
    """A site accounted on average intensity may name a marginal source (e.g. WattTime MOER) for planning."""
    start = datetime(2026, 11, 23, tzinfo=UTC)
    asked = []

    def loader(spec, s, e):
        asked.append(spec["source"])
        signal: Signal = "marginal" if spec["source"] == "watttime" else "average"
        values = [900.0, 100.0, 100.0, 900.0] * 6
        return [IntensityRow(spec["zone"], s + timedelta(hours=i), v, signal, spec["source"])
                for i, v in enumerate(values[: int((e - s).total_seconds() // 3600)])]

    grid = {"source": "static", "zone": "CISO", "marginal": {"source": "watttime", "region": "CAISO_NORTH"}}
    site = Site("sfo", "CISO", grid, 1.2, (), 0.0, None, None, 0.0, (), 0.0, 0.0)
    cfg = FacilityConfig(path="", sites={"sfo": site})  # no file: relative paths resolve nowhere
    plan = plan_facility(cfg, ["sfo"], 2, 100, start + timedelta(hours=4), earliest=start, mode="forecast",
                         loader=loader)
    assert asked == ["watttime"]
    assert plan.best.signal == "marginal" and plan.best.start == start + timedelta(hours=1)
    assert plan.to_json()["sites"][0]["signal"] == "marginal"
    assert "MARGINAL intensity from watttime" in format_plan(plan)
