"""One loader per grid source, behind a small table: a checked spec and a window -> the source's raw rows.

Raw means as the source gives them: hours may be missing (gap filling is
:mod:`.gaps`' job) and API sources return neighbours around the window
(yesterday, the next hours) for the fill rules to use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from wattfleet.aggregator.grid.eia930 import read_eia930
from wattfleet.aggregator.grid.electricitymaps import ElectricityMapsClient, load_electricitymaps_csv
from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.grid.model import IntensityRow, Signal
from wattfleet.aggregator.grid.spec import (
    SPEC,
    basis,
    http_client,
    implausible_action,
    max_intensity,
    need,
    number,
    pick,
    resolve_path,
    timestamps,
)
from wattfleet.aggregator.grid.static import AnnualFactor, load_static_table, static_rows
from wattfleet.aggregator.grid.timeutil import HOUR
from wattfleet.aggregator.grid.ukcarbon import UkCarbonClient
from wattfleet.aggregator.grid.watttime import SIGNALS, WattTimeClient


@dataclass(frozen=True)
class Window:
    """What a loader is asked for: the hours [start, end), and [fetch_start, fetch_end) for API neighbours."""

    start: datetime
    end: datetime
    fetch_start: datetime
    fetch_end: datetime
    base_dir: str | Path | None
    static_table: Mapping[str, AnnualFactor]


@dataclass
class SourceRows:
    """A source's rows with the zone they are for, where they came from and the signal they carry."""

    rows: list[IntensityRow]
    zone: str | None
    origin: str
    signal: Signal = "average"
    notes: list[str] = field(default_factory=list)


def _eia930(spec: Mapping[str, Any], w: Window) -> SourceRows:
    path = resolve_path(need(spec, "path"), w.base_dir)
    action = implausible_action(spec)
    parsed = read_eia930(path, spec.get("zone"), max_intensity(spec), timestamps(spec), basis(spec))
    notes = [f"{path.name}:{e.line}: {e.hour_utc.isoformat()} has no intensity"
             + (f" (only {', '.join(e.present_columns)})" if e.present_columns else " (empty row)")
             for e in parsed.empty if w.start <= e.hour_utc < w.end]
    bad = [b for b in parsed.implausible if w.start <= b.hour_utc < w.end]
    if bad and action == "refuse":
        first = bad[0]
        raise GridDataError(str(path), first.line, "avg_CI",
                            f"hour starting {first.hour_utc.isoformat()} is implausible: {first.reason}; "
                            f"{len(bad)} such hour(s) in the window (lines {', '.join(str(b.line) for b in bad)}); "
                            "the grid spec says implausible: refuse (flag keeps them marked, fill treats them "
                            "as gaps)")
    rows = parsed.rows
    if action == "fill":  # gaps for the fill chain, and never the basis of another hour's fill
        rows = [r for r in rows if r.implausible is None]
    notes += [f"{path.name}:{b.line}: {b.hour_utc.isoformat()} implausible ({b.reason}); "
              + ("treated as a gap" if action == "fill" else "kept, flagged") for b in bad]
    return SourceRows(rows, parsed.zone, str(path), notes=notes)


def _relabel(rows: list[IntensityRow], spec: Mapping[str, Any]) -> list[IntensityRow]:
    """Rows keyed by the hour's start: an hour-ending label names the hour before it."""
    if timestamps(spec) == "hour_start":
        return rows
    return [replace(r, hour_utc=r.hour_utc - HOUR) for r in rows]


def _electricitymaps(spec: Mapping[str, Any], w: Window) -> SourceRows:
    if spec.get("path"):
        return _electricitymaps_csv(spec, w)
    zone = need(spec, "zone")
    client = ElectricityMapsClient(http=http_client(spec), **pick(spec, "base_url", "emission_factor", "token_env"))
    endpoint = spec.get("endpoint", "past-range")
    if endpoint == "past-range":
        rows = client.past_range(zone, w.fetch_start, w.fetch_end)
    elif endpoint == "history":
        rows = client.history(zone)
    elif endpoint == "latest":
        rows = client.latest(zone)
    else:
        raise GridDataError(SPEC, None, "endpoint", f"must be past-range, history or latest, got {endpoint!r}")
    return SourceRows(_relabel(rows, spec), zone, client.base_url)


def _electricitymaps_csv(spec: Mapping[str, Any], w: Window) -> SourceRows:
    """Electricity Maps CSV exports (one path or a list, e.g. one file per year)."""
    paths = spec["path"] if isinstance(spec["path"], (list, tuple)) else [spec["path"]]
    zone = spec.get("zone")
    rows: list[IntensityRow] = []
    for p in paths:
        rows += load_electricitymaps_csv(resolve_path(p, w.base_dir), zone, spec.get("emission_factor", "direct"),
                                         max_intensity(spec))
    return SourceRows(_relabel(rows, spec), zone, ", ".join(str(p) for p in paths))


def _watttime(spec: Mapping[str, Any], w: Window) -> SourceRows:
    region = need(spec, "region")
    signal_type = spec.get("signal_type", "co2_moer")
    if signal_type not in SIGNALS:
        raise GridDataError(SPEC, None, "signal_type", f"must be one of {sorted(SIGNALS)}, got {signal_type!r}")
    zone = spec.get("zone") or region
    client = WattTimeClient(http=http_client(spec), **pick(spec, "base_url"))
    endpoint = spec.get("endpoint", "historical")
    mpph = number(spec, "min_points_per_hour", 1, True)
    if endpoint == "historical":
        rows = client.historical(region, w.fetch_start, w.fetch_end, signal_type, zone, mpph)
    elif endpoint == "forecast":
        rows = client.forecast(region, signal_type, number(spec, "horizon_hours", 24, True), zone, mpph)
    else:
        raise GridDataError(SPEC, None, "endpoint", f"must be historical or forecast, got {endpoint!r}")
    return SourceRows(rows, zone, client.base_url, signal=SIGNALS[signal_type])


def _ukcarbon(spec: Mapping[str, Any], w: Window) -> SourceRows:
    client = UkCarbonClient(http=http_client(spec), **pick(spec, "base_url"))
    zone = spec.get("zone")
    if spec.get("regionid") is None and spec.get("postcode") is None:
        zone = zone or "GB"
        return SourceRows(client.national(w.fetch_start, w.fetch_end, zone), zone, client.base_url)
    rows = client.regional(w.fetch_start, w.fetch_end, spec.get("regionid"), spec.get("postcode"), zone)
    zone = zone or (rows[0].zone if rows else f"GB-{spec.get('regionid') or spec.get('postcode')}")
    return SourceRows(rows, zone, client.base_url)


def _static(spec: Mapping[str, Any], w: Window) -> SourceRows:
    """The annual table, flat over the window; a site's own table (``path``) is authoritative: no default
    fallback."""
    zone = need(spec, "zone")
    table: Mapping[str, AnnualFactor]
    if spec.get("path"):
        origin = str(resolve_path(spec["path"], w.base_dir))
        table = load_static_table(origin)
    else:
        origin, table = "static table", w.static_table
    rows = static_rows(zone, w.start, w.end, spec.get("grams_per_kwh"), table)
    if "basis" in spec:  # the spec's own statement wins over the table's
        rows = [replace(r, basis=basis(spec)) for r in rows]
    return SourceRows(rows, zone, origin)


LOADERS: dict[str, Callable[[Mapping[str, Any], Window], SourceRows]] = {
    "eia930": _eia930,
    "electricitymaps": _electricitymaps,
    "watttime": _watttime,
    "ukcarbon": _ukcarbon,
    "static": _static,
}
