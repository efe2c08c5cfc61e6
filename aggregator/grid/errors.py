"""The one error every grid-intensity loader raises for bad input.

A carbon figure is only as trustworthy as the hour of intensity behind it, so
bad data must stop the load with a message a person can act on: which file or
URL, which line, which field, and what was wrong.
"""

from __future__ import annotations


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
