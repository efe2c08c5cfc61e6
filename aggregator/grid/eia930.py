"""Loader for hourly EIA-930-derived carbon-intensity CSVs.

Format (one file per US balancing authority, e.g. ``CISO.csv``)::

    timestamp,WND,SUN,WAT,OIL,NG,COL,NUC,OTH,avg_CI
    2022-01-01 00:00:00+00:00,3130.0,1367.0,2304.0,44.0,6764.0,19.0,2265.0,189.0,222.29

``timestamp`` is a UTC hour, the fuel columns are net generation in MWh,
``avg_CI`` the average intensity in gCO2/kWh. EIA publishes EIA-930 with
**hour-ending** times (its files' column is "UTC Time at End of Hour"), and the
solar generation of these files peaks half an hour after solar noon only when
read that way (tests/aggregator/grid/test_solar_noon.py), so a label is read as
the end of its hour by default and stored as the hour's start, wattfleet's
convention: ``2022-01-01 01:00`` is the hour [00:00, 01:00). The grid spec's
``timestamps: hour_start`` reads labels as starts instead, for files that were
already converted.

``avg_CI`` is a **life-cycle** intensity (the publisher weights the mix by
IPCC AR5 life-cycle medians, docs/accounting.md 5.5), so with the grid spec's
``basis: lifecycle`` (the default) each hour is split by its mix into the
direct intensity (``grams_per_kwh``, Scope 2) and the upstream rest
(``upstream_grams_per_kwh``, Scope 3 Category 3) by :mod:`.basis`;
``basis: direct`` keeps ``avg_CI`` whole, for files recomputed on that basis.

Hours whose own mix says the intensity cannot be right (generation far below
the file's median hour, or an intensity the mix cannot produce) are flagged
(:mod:`.implausible`), listed in :attr:`Eia930File.implausible` with their line.

Real files have warts: rows with a timestamp but no values, rows with only
one fuel filled and no intensity, and a header whose first column (the
timestamp, written as an unnamed pandas index) has no name, which is read as
``timestamp``. Such an hour yields *no* row: the gap is
listed in :attr:`Eia930File.empty` with its line number and later found by
:mod:`.gaps`, so nothing is dropped or invented silently. Values that are
present but wrong (not a number, NaN, negative intensity) stop the load
with a :class:`GridDataError` naming file, line and column.

Carbon-free share (``cfe_ratio``) = (WND + SUN + WAT + NUC) / total net
generation of the eight fuel columns. Wind, solar, hydro and nuclear emit no
CO2 at the point of generation (the GHG Protocol / 24/7 CFE convention);
OIL, NG, COL are fossil, and OTH (biomass, geothermal, storage, unknown) is
counted as *not* carbon-free because its mix is unknown: this errs towards a
lower CFE score rather than claiming clean energy we cannot show. EIA-930
can report small negative net generation (plant self-use at night, pumped
storage); a negative value is net consumption, not supply, so it counts as
zero in both numerator and denominator. The ratio is None when a fuel value
is missing or the total is zero.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from wattfleet.aggregator.grid.basis import split_lifecycle
from wattfleet.aggregator.grid.errors import (
    DEFAULT_MAX_GRAMS_PER_KWH,
    GridDataError,
    csv_number,
    open_csv,
    plausible_intensity,
    read_header,
)
from wattfleet.aggregator.grid.implausible import implausible_reason, median_generation_mwh, total_generation_mwh
from wattfleet.aggregator.grid.model import IntensityRow
from wattfleet.aggregator.grid.timeutil import HOUR, parse_utc

FUEL_COLUMNS = ("WND", "SUN", "WAT", "OIL", "NG", "COL", "NUC", "OTH")
CARBON_FREE_FUELS = ("WND", "SUN", "WAT", "NUC")
INTENSITY_COLUMN = "avg_CI"
TIMESTAMP_COLUMN = "timestamp"
REQUIRED_COLUMNS = (TIMESTAMP_COLUMN, *FUEL_COLUMNS, INTENSITY_COLUMN)
SOURCE = "eia930"


@dataclass(frozen=True)
class EmptyHour:
    """An hour the file lists but gives no intensity for."""

    hour_utc: datetime
    line: int
    present_columns: tuple[str, ...]


@dataclass(frozen=True)
class ImplausibleHour:
    """An hour with an intensity that its own generation mix says is wrong (:mod:`.implausible`)."""

    hour_utc: datetime
    line: int
    reason: str


@dataclass
class Eia930File:
    path: Path
    zone: str
    rows: list[IntensityRow]
    empty: list[EmptyHour] = field(default_factory=list)
    implausible: list[ImplausibleHour] = field(default_factory=list)


def _cfe_ratio(fuels: list[float | None]) -> float | None:
    supply: list[float] = []
    for v in fuels:
        if v is None:
            return None
        supply.append(max(0.0, v))
    total = sum(supply)
    if total <= 0.0:
        return None
    clean = sum(supply[FUEL_COLUMNS.index(f)] for f in CARBON_FREE_FUELS)
    return clean / total


def read_eia930(path: str | Path, zone: str | None = None,
                max_grams_per_kwh: float = DEFAULT_MAX_GRAMS_PER_KWH, timestamps: str = "hour_ending",
                basis: str = "lifecycle") -> Eia930File:
    """Parse one file: rows for hours with an intensity (keyed by the hour's start), the empty hours and
    the implausible ones. ``timestamps`` says what a label names: ``hour_ending`` (EIA's convention) or
    ``hour_start``. ``basis`` says what ``avg_CI`` counts: ``lifecycle`` (the dc-rl files) is split by
    the hour's mix into a direct intensity and its upstream part (:mod:`.basis`); ``direct`` is kept."""
    path = Path(path)
    if basis not in ("direct", "lifecycle"):
        raise ValueError(f"basis must be direct or lifecycle, got {basis!r}")
    if timestamps not in ("hour_start", "hour_ending"):
        raise ValueError(f"timestamps must be hour_start or hour_ending, got {timestamps!r}")
    shift = HOUR if timestamps == "hour_ending" else timedelta(0)
    zone = zone or path.stem
    fh = open_csv(path)
    with fh:
        reader = csv.reader(fh)
        header = read_header(reader, path)
        header = [h.strip() for h in header]
        if TIMESTAMP_COLUMN not in header and header and header[0] == "":
            header[0] = TIMESTAMP_COLUMN  # pandas index written without a name (WAAT.csv)
        for col in REQUIRED_COLUMNS:
            if col not in header:
                raise GridDataError(str(path), 1, col, f"missing column; header is {header}")
        ncols = len(header)
        i_ts = header.index(TIMESTAMP_COLUMN)
        i_ci = header.index(INTENSITY_COLUMN)
        i_fuels = [header.index(f) for f in FUEL_COLUMNS]

        rows: list[IntensityRow] = []
        empty: list[EmptyHour] = []
        mixes: list[tuple[int, list[float | None]]] = []  # (line, fuels) of each row, for the plausibility check
        seen: dict[datetime, int] = {}
        for rec in reader:
            line = reader.line_num
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                continue  # blank line: no hour claimed, nothing to report
            if len(rec) != ncols:
                raise GridDataError(str(path), line, None, f"expected {ncols} columns, found {len(rec)}")
            ts_text = rec[i_ts]
            try:
                hour = parse_utc(ts_text)
            except ValueError:
                raise GridDataError(str(path), line, TIMESTAMP_COLUMN, f"not a timestamp: {ts_text!r}") from None
            if hour.minute or hour.second or hour.microsecond:
                raise GridDataError(str(path), line, TIMESTAMP_COLUMN, f"not on the hour: {ts_text!r}")
            hour -= shift  # the hour's start
            if hour in seen:
                raise GridDataError(
                    str(path), line, TIMESTAMP_COLUMN, f"duplicate hour {ts_text!r}, first on line {seen[hour]}"
                )
            seen[hour] = line

            fuels: list[float | None] = []
            for col, idx in zip(FUEL_COLUMNS, i_fuels, strict=True):
                text = rec[idx].strip()
                fuels.append(csv_number(text, path, line, col) if text else None)
            ci_text = rec[i_ci].strip()
            if not ci_text:
                present = tuple(c for c, v in zip(FUEL_COLUMNS, fuels, strict=True) if v is not None)
                empty.append(EmptyHour(hour, line, present))
                continue
            ci = plausible_intensity(csv_number(ci_text, path, line, INTENSITY_COLUMN), max_grams_per_kwh, path,
                                     line, INTENSITY_COLUMN)
            rows.append(IntensityRow(zone=zone, hour_utc=hour, grams_per_kwh=ci, signal="average",
                                     source=SOURCE, cfe_ratio=_cfe_ratio(fuels)))
            mixes.append((line, fuels))
    median = median_generation_mwh([total_generation_mwh(f) for _, f in mixes])
    implausible: list[ImplausibleHour] = []
    for i, (row, (line, fuels)) in enumerate(zip(rows, mixes, strict=True)):
        why = implausible_reason(FUEL_COLUMNS, fuels, row.grams_per_kwh, median)
        if why is not None:
            implausible.append(ImplausibleHour(row.hour_utc, line, why))
            rows[i] = row = replace(row, implausible=why)
        split = split_lifecycle(FUEL_COLUMNS, fuels, row.grams_per_kwh) if basis == "lifecycle" else None
        if split is not None:  # checked above on the file's own (life-cycle) value, then split
            rows[i] = replace(row, grams_per_kwh=split[0], upstream_grams_per_kwh=split[1], basis="direct")
        else:
            rows[i] = replace(row, basis=basis)
    rows.sort(key=lambda r: r.hour_utc)
    return Eia930File(path=path, zone=zone, rows=rows, empty=empty, implausible=implausible)


def load_eia930(path: str | Path, zone: str | None = None, basis: str = "lifecycle") -> list[IntensityRow]:
    """Rows for every hour of the file that has an intensity value."""
    return read_eia930(path, zone, basis=basis).rows
