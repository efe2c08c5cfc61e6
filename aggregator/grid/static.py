"""Static annual intensity table: the fallback of last resort.

An annual mean hides the 20-50x spread by place and up to 8x by hour, so
these numbers are only for zones without hourly data, or to fill hours no
hourly rule could (``static_annual`` in :mod:`.gaps`); every row made from
them says so (``source="static"``, or ``fill_rule="static_annual"``).
They are average intensities and are never used as a marginal signal.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from wattfleet.aggregator.grid.errors import GridDataError, open_csv
from wattfleet.aggregator.grid.model import IntensityRow
from wattfleet.aggregator.grid.timeutil import ceil_hour, floor_hour, hours, require_aware

SOURCE = "static"


@dataclass(frozen=True)
class AnnualFactor:
    grams_per_kwh: float
    basis: str  # where the number comes from
    # What the number counts (docs/accounting.md 5.5): "lifecycle" for the EIA-930-derived means (their
    # avg_CI is life-cycle), None where the figure does not say (the grid spec's basis then applies).
    intensity_basis: str | None = None


_REF = "rounded reference value, see docs/accounting.md (static annual table)"
_EIA = ("2022 unweighted mean of hourly avg_CI over the hours with a value, computed from "
        "shared/data/grid-eia930-2022/{zone}.csv (EIA-930 via HewlettPackard/dc-rl)")

DEFAULT_TABLE: dict[str, AnnualFactor] = {
    # Rounded reference values (gCO2e/kWh); docs/accounting.md gives the public source of each.
    "FR": AnnualFactor(50.0, _REF + ": France about 50 (RTE eCO2mix; EEA electricity GHG intensity indicator)"),
    "SE": AnnualFactor(22.0, _REF + ": Sweden about 20-25, mid value (EEA indicator; Electricity Maps zone SE)"),
    "PL": AnnualFactor(820.0, _REF + ": Poland/coal 820-1000, low end (EEA indicator; KOBiZE national factor)"),
    "US": AnnualFactor(400.0, _REF + ": US average about 400-429, low end (EPA eGRID; Patterson et al. 2021: 429)"),
    "CA-QC": AnnualFactor(20.0, _REF + ": Quebec hydro about 20 (ECCC National Inventory Report, Part 3)"),
    # US balancing authorities, 2022 (tests/test_grid_static.py recomputes these).
    "AZPS": AnnualFactor(575.04, _EIA.format(zone="AZPS"), "lifecycle"),
    "BPAT": AnnualFactor(54.71, _EIA.format(zone="BPAT"), "lifecycle"),
    "CISO": AnnualFactor(256.19, _EIA.format(zone="CISO") + "; 8757 of 8760 hours", "lifecycle"),
    "MISO": AnnualFactor(440.55, _EIA.format(zone="MISO") + "; 8757 of 8760 hours", "lifecycle"),
    "NYIS": AnnualFactor(272.77, _EIA.format(zone="NYIS"), "lifecycle"),
    "SOCO": AnnualFactor(423.20, _EIA.format(zone="SOCO"), "lifecycle"),
    # WAAT's file repeats BPAT's rows for 8081 of 8760 hours, so this is close to
    # BPAT's figure; treat it with suspicion.
    "WAAT": AnnualFactor(54.72, _EIA.format(zone="WAAT"), "lifecycle"),
}


def load_static_table(path: str | Path) -> dict[str, AnnualFactor]:
    """Read a site's own annual table: CSV ``zone,grams_per_kwh[,basis]``.

    Lines whose first cell starts with ``#`` are comments. A zone listed
    twice, a missing or negative value is an error naming file, line, column.
    """
    path = Path(path)
    fh = open_csv(path)
    table: dict[str, AnnualFactor] = {}
    lines: dict[str, int] = {}
    with fh:
        reader = csv.reader(fh)
        header = None
        for rec in reader:
            if not rec or not "".join(rec).strip() or rec[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [h.strip() for h in rec]
                for col in ("zone", "grams_per_kwh"):
                    if col not in header:
                        raise GridDataError(str(path), reader.line_num, col, f"missing column; header is {header}")
                continue
            line = reader.line_num
            if len(rec) != len(header):
                raise GridDataError(str(path), line, None, f"expected {len(header)} columns, found {len(rec)}")
            row = dict(zip(header, (c.strip() for c in rec), strict=True))
            zone = row["zone"]
            if not zone:
                raise GridDataError(str(path), line, "zone", "empty zone")
            if zone in lines:
                raise GridDataError(str(path), line, "zone", f"zone {zone!r} listed twice, first on line {lines[zone]}")
            try:
                value = float(row["grams_per_kwh"])
            except ValueError:
                raise GridDataError(str(path), line, "grams_per_kwh",
                                    f"not a number: {row['grams_per_kwh']!r}") from None
            if not math.isfinite(value) or value < 0:
                raise GridDataError(str(path), line, "grams_per_kwh", f"must be a finite number >= 0, got {value}")
            lines[zone] = line
            table[zone] = AnnualFactor(value, row.get("basis") or f"{path.name} line {line}")
    if header is None:
        raise GridDataError(str(path), 1, None, "empty file, expected a header line 'zone,grams_per_kwh[,basis]'")
    return table


def make_table(
    overrides: Mapping[str, float] | str | Path | None = None, base_dir: str | Path | None = None
) -> dict[str, AnnualFactor]:
    """The default table with a site's overrides on top.

    ``overrides`` is ``{"zone": g_per_kwh}`` or the path of a CSV read by
    :func:`load_static_table` (relative to ``base_dir``).
    """
    table = dict(DEFAULT_TABLE)
    if isinstance(overrides, (str, Path)):
        p = Path(overrides)
        table.update(load_static_table(p if p.is_absolute() or base_dir is None else Path(base_dir) / p))
        return table
    for zone, value in (overrides or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise GridDataError("static table", None, zone, f"annual factor must be a number >= 0, got {value!r}")
        table[zone] = AnnualFactor(float(value), "configured override")
    return table


def annual_factor(zone: str, table: Mapping[str, AnnualFactor] | None = None) -> AnnualFactor:
    table = DEFAULT_TABLE if table is None else table
    try:
        return table[zone]
    except KeyError:
        raise GridDataError("static table", None, zone,
                            f"no annual factor for zone {zone!r}; known: {sorted(table)}") from None


def static_rows(
    zone: str, start: datetime, end: datetime, grams_per_kwh: float | None = None,
    table: Mapping[str, AnnualFactor] | None = None,
) -> list[IntensityRow]:
    """One row per hour of [start, end), all with the zone's annual factor (and its basis, when stated)."""
    factor = annual_factor(zone, table) if grams_per_kwh is None else None
    value = factor.grams_per_kwh if factor is not None else float(grams_per_kwh or 0.0)
    stated = factor.intensity_basis if factor is not None else None
    if value < 0:
        raise GridDataError("static table", None, zone, f"annual factor must be >= 0, got {value}")
    start, end = floor_hour(require_aware(start, "start")), ceil_hour(require_aware(end, "end"))
    return [IntensityRow(zone=zone, hour_utc=h, grams_per_kwh=value, signal="average", source=SOURCE, basis=stated)
            for h in hours(start, end)]
