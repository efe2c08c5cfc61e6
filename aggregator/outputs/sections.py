"""A report section as data: title, note, table (or the one line saying why there is none), charts.

Every document (Markdown, HTML, PDF) walks the same list of sections, so a new
part of the report is one more :class:`Section` (or one more entry in
``documents.SECTIONS``), never new rendering code in each document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wattfleet.aggregator.outputs.charts import Chart

NOTHING = "Nothing to show this month."


@dataclass
class Section:
    """One part of the report. ``cols``/``rows`` None: the section has no table (charts or note only)."""

    key: str
    title: str
    note: str = ""
    cols: list[str] | None = None
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    empty: str = NOTHING  # replaces the note and the table when the table has no rows
    level: int = 2  # 2: a section, 3: a part of the section before it
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # bullet points after the table
    record: bool = False  # one row of figures by design: shown as one line per figure

    @property
    def has_table(self) -> bool:
        return self.cols is not None

    @property
    def is_empty(self) -> bool:
        """A table section with no rows: shown as its title and one line (:attr:`empty`)."""
        return self.cols is not None and not self.rows

    @property
    def anchor(self) -> str:
        return "s-" + "".join(c if c.isalnum() else "-" for c in self.key.lower())
