"""The fleet's configuration: sites as ``--sites`` takes them."""

from __future__ import annotations

from wattfleet.sim.config import parse_sites


def test_sites_are_name_zone_pairs_or_bare_zones() -> None:
    assert parse_sites("CISO,west:BPAT") == (("dc-ciso", "CISO"), ("west", "BPAT"))
