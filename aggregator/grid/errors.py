"""The one error every grid-intensity loader raises for bad input.

A carbon figure is only as trustworthy as the hour of intensity behind it, so
bad data must stop the load with a message a person can act on: which file or
URL, which line, which field, and what was wrong.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


class GridDataError(ValueError):
    """Bad grid-intensity input: names the file or URL, line and field."""

    def __init__(
        self, source: str, line: int | None, field: str | None, message: str, *, status: int | None = None
    ) -> None:
        self.source = str(source)
        self.status = status  # HTTP status when the error came from an API response
        self.line = line
        self.field = field
        self.message = message
        where = self.source
        if line is not None:
            where += f":{line}"
        if field is not None:
            where += f": field {field!r}"
        super().__init__(f"{where}: {message}")


def open_csv(path: str | Path) -> TextIO:
    """Open a grid CSV for ``csv.reader`` (BOM-tolerant); a failure is a GridDataError naming the file."""
    try:
        return Path(path).open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise GridDataError(str(path), None, None, f"cannot open: {exc.strerror or exc}") from None


def read_header(reader: Iterator[list[str]], path: str | Path) -> list[str]:
    """The first line of a grid CSV; an empty file is an error at line 1."""
    header = next(reader, None)
    if header is None:
        raise GridDataError(str(path), 1, None, "empty file, expected a header line")
    return header


DEFAULT_MAX_GRAMS_PER_KWH = 2000.0
"""Above any grid's hourly average (oil- and lignite-heavy grids stay under about 1,300 g/kWh): a bad row."""


def plausible_intensity(value: float, max_grams_per_kwh: float, path: str | Path, line: int | None,
                        column: str) -> float:
    """``value`` when it is a possible grid intensity in gCO2e/kWh; else an error naming where it came from."""
    if value < 0.0:
        raise GridDataError(str(path), line, column, f"negative intensity {value}")
    if value > max_grams_per_kwh:
        raise GridDataError(str(path), line, column,
                            f"intensity {value:g} g/kWh is above the plausible maximum {max_grams_per_kwh:g} "
                            "(the grid spec's max_grams_per_kwh)")
    return value


def csv_number(text: str, path: str | Path, line: int, column: str) -> float:
    """A finite number from a CSV cell; anything else is an error naming file, line and column."""
    try:
        value = float(text)
    except ValueError:
        raise GridDataError(str(path), line, column, f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise GridDataError(str(path), line, column, f"not a finite number: {text!r}")
    return value
