"""``instruments:``: PPAs, RECs, GOs and green tariffs for market-based Scope 2.

Each covers one site or every site in a market (grid zone) over [start, end).
The same MWh must not be claimed twice, so two instruments may not cover the
same site in the same hour.
"""

from __future__ import annotations

from typing import Any

from wattfleet.aggregator.config.checker import Checker, Path_
from wattfleet.aggregator.config.model import INSTRUMENT_TYPES, Instrument, Site

INSTRUMENT_KEYS = {"name", "type", "site", "market", "start", "end", "mwh", "grams_per_kwh", "hourly_matched"}
INSTRUMENT_REQUIRED = {"name", "type", "start", "end", "mwh", "grams_per_kwh"}


def parse_instruments(c: Checker, raw: Any, sites: dict[str, Site]) -> list[Instrument]:
    zones = {s.zone for s in sites.values()}
    spans: list[tuple[Instrument, Path_]] = []
    for p, d in c.entries(raw, "instruments", INSTRUMENT_KEYS, INSTRUMENT_REQUIRED):
        inst = _instrument(c, d, p, zones)
        if inst is not None:
            spans.append((inst, p))
    _check_double_claims(c, spans, sites)
    return [inst for inst, _ in spans]


def _instrument(c: Checker, d: dict[str, Any], p: Path_, zones: set[str]) -> Instrument | None:
    kind = c.text(d, "type", p) or ""
    if kind and kind not in INSTRUMENT_TYPES:
        c.error(p + ("type",), f"unknown instrument type {kind!r} (one of {', '.join(INSTRUMENT_TYPES)})")
    site, market = c.text(d, "site", p), c.text(d, "market", p)
    one_scope = (site is None) != (market is None)
    if not one_scope:
        c.error(p, "give exactly one of 'site' (a site name) or 'market' (a grid zone)")
    if site is not None and site not in c.declared_sites:
        c.error(p + ("site",), f"unknown site {site!r}")
    if market is not None and market not in zones | c.declared_zones:
        c.error(p + ("market",), f"unknown zone {market!r}: no site is in that market "
                                  f"(zones: {', '.join(sorted(zones)) or 'none'})")
    start, end = c.instant(d, "start", p), c.instant(d, "end", p)
    if start and end and end <= start:
        c.error(p + ("end",), "must be after 'start' (periods are [start, end))")
        return None
    mwh = c.number(d, "mwh", p, what=" (energy cannot be negative)")
    factor = c.number(d, "grams_per_kwh", p, what=" (intensity cannot be negative)")
    hourly = d.get("hourly_matched", kind == "ppa")
    if not isinstance(hourly, bool):
        c.error(p + ("hourly_matched",), "must be true or false")
        hourly = False
    if start is None or end is None or mwh is None or factor is None or kind not in INSTRUMENT_TYPES \
            or not one_scope:
        return None
    return Instrument(c.text(d, "name", p) or f"#{p[-1]}", kind, site, market, start, end, mwh, factor, hourly)


def _covered_sites(inst: Instrument, sites: dict[str, Site]) -> set[str]:
    return {inst.site} if inst.site else {s.name for s in sites.values() if s.zone == inst.market}


def _check_double_claims(c: Checker, spans: list[tuple[Instrument, Path_]], sites: dict[str, Site]) -> None:
    """An error at the later instrument for each pair covering a common site over a common period."""
    for a_i, (a, pa) in enumerate(spans):
        for b, pb in spans[a_i + 1:]:
            common = _covered_sites(a, sites) & _covered_sites(b, sites)
            if common and a.start < b.end and b.start < a.end:
                c.error(pb, f"instrument {b.name!r} overlaps {a.name!r} (line {c.lines.get(pa, '?')}) for site(s) "
                            f"{', '.join(sorted(common))} between {max(a.start, b.start).date()} and "
                            f"{min(a.end, b.end).date()}: the same consumption cannot be claimed twice")
