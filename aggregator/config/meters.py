"""A site's PUE: a constant, or metered facility/IT energy per month or hour (inline or from a CSV).

Metered periods win over the constant default for the hours they cover; the
default stays required because a meter rarely covers every hour of a year.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from wattfleet.aggregator.config.checker import Checker, Path_
from wattfleet.aggregator.config.dates import month_end, utc_midnight
from wattfleet.aggregator.config.model import PueMeter

PUE_KEYS = {"default", "meter", "meter_csv"}
METER_KEYS = {"month", "hour", "total_kwh", "it_kwh"}
_PUE_MIN = " (facility energy >= IT energy)"
_PUE_MAX = " (raise defaults.max_pue if a site really runs above it)"


def read_meter_csv(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) for each data row; numbers as floats, the rest stripped text. Raises OSError."""
    with open(path, newline="") as fh:
        return [(n, {k: _csv_value(v) for k, v in row.items() if k})
                for n, row in enumerate(csv.DictReader(fh), start=2)]


def _csv_value(v: str | None) -> Any:
    if v is None:
        return None
    try:
        return float(v)
    except ValueError:
        return v.strip()


def parse_pue(c: Checker, value: Any, path: Path_, base: Path) -> tuple[float | None, tuple[PueMeter, ...]]:
    """(constant default PUE, metered periods sorted by start) from a site's ``pue`` field."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        pue = c.number({"pue": value}, "pue", path[:-1], minimum=1.0, what=_PUE_MIN)
        if pue is not None and pue > c.max_pue:
            c.error(path, f"{pue:g} is above the plausible maximum {c.max_pue:g}{_PUE_MAX}")
            return None, ()
        return pue, ()
    d = c.mapping(value, path, PUE_KEYS)
    if d is None:
        return None, ()
    default = c.number(d, "default", path, minimum=1.0, what=_PUE_MIN)
    if default is not None and default > c.max_pue:
        c.error(path + ("default",), f"{default:g} is above the plausible maximum {c.max_pue:g}{_PUE_MAX}")
    located = [(m, checker, rpath) for checker, rpath, row in _meter_rows(c, d, path, base)
               if (m := _meter_from_row(checker, row, rpath)) is not None]
    _check_overlaps(located)
    if default is None:
        c.error(path + ("default",), "a constant 'default' PUE is required for hours the meter does not cover")
    return default, tuple(sorted((m for m, _, _ in located), key=lambda m: m.start))


def _check_overlaps(located: list[tuple[PueMeter, Checker, Path_]]) -> None:
    """An error at the later of two readings of the same granularity that cover a common hour.

    An hourly reading inside a metered month is allowed: it is the finer measurement, and the
    facts (``sql/facts/030_site_hour_pue.sql``) and ``estimators.site_pue_at`` prefer it for its
    hour, the monthly reading applying to the rest of the month. Two hourly (or two monthly)
    readings of one hour would leave the choice between them to chance.
    """
    for kind in ("hourly", "monthly"):
        same = sorted((x for x in located if _kind(x[0]) == kind), key=lambda x: x[0].start)
        for (a, ca, pa), (b, cb, pb) in pairwise(same):
            if b.start < a.end:
                cb.error(pb, f"meter periods overlap at {b.start.isoformat()}: this {kind} reading and the one "
                             f"at {ca.where(pa)}")


def _kind(m: PueMeter) -> str:
    return "hourly" if m.end - m.start <= timedelta(hours=1) else "monthly"


def _meter_rows(c: Checker, d: dict[str, Any], path: Path_, base: Path) -> list[tuple[Checker, Path_, Any]]:
    """Inline ``meter`` rows, then ``meter_csv`` rows; each with the checker that locates its errors."""
    rows: list[tuple[Checker, Path_, Any]] = [(c, path + ("meter", i), row)
                                              for i, row in enumerate(d.get("meter") or [])]
    if "meter_csv" in d:
        csv_path = base / str(d["meter_csv"])
        try:
            rows += [(c.for_file(str(csv_path), n), (), row) for n, row in read_meter_csv(csv_path)]
        except OSError as exc:
            c.error(path + ("meter_csv",), f"cannot read {csv_path}: {exc.strerror or exc}")
    return rows


def _meter_from_row(c: Checker, row: Any, path: Path_) -> PueMeter | None:
    r = c.mapping(row, path, METER_KEYS, {"total_kwh", "it_kwh"})
    if r is None:
        return None
    total = c.number(r, "total_kwh", path)
    it = c.number(r, "it_kwh", path, strict_min=True)
    period = _meter_period(c, r, path)
    if total is not None and it is not None and total < it:
        c.error(path + ("total_kwh",),
                f"PUE below 1: total {total:g} kWh < IT {it:g} kWh (facility energy includes IT)")
    elif total is not None and it is not None and total > c.max_pue * it:
        c.error(path + ("total_kwh",), f"PUE {total / it:g} (total {total:g} / IT {it:g} kWh) is above the "
                                       f"plausible maximum {c.max_pue:g}{_PUE_MAX}")
        return None
    if period is None or total is None or it is None:
        return None
    return PueMeter(period[0], period[1], total, it)


def _meter_period(c: Checker, r: dict[str, Any], path: Path_) -> tuple[datetime, datetime] | None:
    """[start, end) of a row: a whole month, or one whole hour."""
    if ("month" in r) == ("hour" in r):
        c.error(path, "give exactly one of 'month' (YYYY-MM) or 'hour' (ISO timestamp)")
        return None
    if "month" in r:
        m = c.month(r, "month", path)
        return (utc_midnight(m), utc_midnight(month_end(m))) if m else None
    start = c.instant(r, "hour", path)
    if start is None:
        return None
    if start.minute or start.second or start.microsecond:
        c.error(path + ("hour",), "must be a whole hour")
        return None
    return start, start + timedelta(hours=1)
