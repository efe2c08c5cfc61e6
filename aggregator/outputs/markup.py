"""Report tables for people: labelled, formatted per column, and fitted to the page.

Every document (Markdown, HTML, PDF) draws a table from the same :class:`Grid`:
headers in words with units (:mod:`labels`), numbers formatted once per column
so a column's figures line up and share their decimals, text left and numbers
right. :func:`fit` makes wide tables fit a page: a one-row table with many
columns is turned on its side (one line per figure), and a table wider than
:data:`MAX_COLUMNS` is split into parts that each repeat the key columns.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from wattfleet.aggregator.outputs.labels import Label, label

# Columns that mark a row rather than hold a figure: not shown, the row is drawn in bold instead.
FLAG_COLUMNS = ("is_total",)
MAX_COLUMNS = 7  # columns per table part; 7 fit A4 portrait at 9 pt with two-line headers
MAX_KEY_COLUMNS = 2  # leading text columns repeated in every part of a split table
NONE_TEXT = "-"


@dataclass
class Grid:
    """A table ready to draw: one header (words, unit) and one alignment per column, cells as text."""

    headers: list[Label]
    rows: list[list[str]]
    numeric: list[bool]
    bold: list[bool] | None = None  # per row: a total (drawn in bold); None: none is

    def is_bold(self, i: int) -> bool:
        return bool(self.bold and self.bold[i])


def column_kind(lab: Label, values: Sequence[Any]) -> str:
    """text, int, num or pct: the label's kind, else what the values are."""
    if lab.kind:
        return lab.kind
    present = [v for v in values if v is not None]
    if not present or any(isinstance(v, (str, bytes, date, datetime, bool)) for v in present):
        return "text"
    if all(isinstance(v, int) for v in present):
        return "int"
    return "num"


def decimals_for(values: Sequence[Any]) -> int:
    """Decimals that give the column's largest figure three significant digits (none from 100 up)."""
    biggest = max((abs(float(v)) for v in values if v is not None and math.isfinite(float(v))), default=0.0)
    if biggest == 0:
        return 0  # an all-zero column shows 0, not 0.00
    return min(6, max(0, 2 - math.floor(math.log10(biggest))))


def format_value(v: Any, kind: str, decimals: int = 2) -> str:
    """One cell as text: the same rule for every document."""
    if v is None:
        return NONE_TEXT
    if isinstance(v, bool):
        return "yes" if v else "no"
    if kind == "text" or isinstance(v, str):
        return v.isoformat() if isinstance(v, (date, datetime)) else str(v)
    x = float(v)
    if not math.isfinite(x):
        return NONE_TEXT
    if kind == "int":
        return f"{round(x):,}"
    if kind == "pct":
        return f"{x * 100:,.1f}"
    return f"{x:,.{decimals}f}"


def fmt(v: Any) -> str:
    """A value outside a table column (notes, headline): its own three significant digits."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return format_value(v, "int" if isinstance(v, int) else "num", decimals_for([v]))
    return format_value(v, "text")


def grid(cols: Sequence[str], rows: Sequence[Sequence[Any]]) -> Grid:
    """Label, format and align a query result (flag columns become bold rows)."""
    flags = [i for i, c in enumerate(cols) if c in FLAG_COLUMNS]
    bold = [any(bool(r[i]) for i in flags) for r in rows] if flags else None
    if flags:
        keep = [i for i in range(len(cols)) if i not in flags]
        cols, rows = [cols[i] for i in keep], [tuple(r[i] for i in keep) for r in rows]
    labels = [label(c) for c in cols]
    cells: list[list[str]] = [[] for _ in rows]
    numeric = []
    for i, lab in enumerate(labels):
        values = [r[i] for r in rows]
        kind = column_kind(lab, values)
        decimals = decimals_for(values) if kind == "num" else 0
        numeric.append(kind != "text")
        for out, v in zip(cells, values, strict=True):
            # sig: figures in different units row by row (a unit column beside them), each to its own digits
            sig = kind == "sig" and isinstance(v, (int, float)) and not isinstance(v, bool)
            out.append(format_value(v, "num", decimals_for([v])) if sig else format_value(v, kind, decimals))
    return Grid(labels, cells, numeric, bold)


def fit(g: Grid, max_columns: int = MAX_COLUMNS, record: bool = False) -> list[Grid]:
    """The table as parts that fit a page: turned on its side, split, or as it is.

    ``record``: the table is one row of figures by design (a summary), always shown as one line per
    figure; a table that has one row this month is turned only when it would otherwise be split.
    """
    if len(g.rows) == 1 and (record or len(g.headers) > max_columns):
        return [Grid([Label("Figure"), Label("Value")], [[h.header, v] for h, v in zip(g.headers, g.rows[0],
                                                                                    strict=True)], [False, True])]
    if len(g.headers) <= max_columns:
        return [g]
    keys = 0
    while keys < min(MAX_KEY_COLUMNS, len(g.headers) - 1) and not g.numeric[keys]:
        keys += 1
    keys = max(keys, 1)
    values = len(g.headers) - keys
    n_parts = -(-values // max(1, max_columns - keys))
    per_part = -(-values // n_parts)  # balanced: 14 figures in three parts of 5, 5 and 4, not 6, 6 and 2
    parts = []
    for start in range(keys, len(g.headers), per_part):
        idx = list(range(keys)) + list(range(start, min(start + per_part, len(g.headers))))
        parts.append(Grid([g.headers[i] for i in idx], [[r[i] for i in idx] for r in g.rows],
                          [g.numeric[i] for i in idx], g.bold))
    return parts


def md_table(cols: list[str], rows: Sequence[Sequence[Any]], record: bool = False) -> str:
    """A Markdown table (a record turned on its side, never split: diffs and editors scroll)."""
    g = fit(grid(cols, rows), max_columns=max(1, len(cols)), record=record)[0]
    out = ["| " + " | ".join(h.header for h in g.headers) + " |",
           "|" + "".join("---:|" if n else "---|" for n in g.numeric)]
    out += ["| " + " | ".join(_md_cell(c, g.is_bold(i)) for c in r) + " |" for i, r in enumerate(g.rows)]
    return "\n".join(out)


def inline_html(text: str) -> str:
    """Escaped text with Markdown's `code` spans as <code>: notes are written once, for both documents."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts)) if len(parts) % 2 else \
        html.escape(text)


def breakable(text: str) -> str:
    """Escaped text that may wrap after ``_`` and ``/`` too: identifiers such as
    ``sci_g_per_gpu_hour_whole_nodes`` would otherwise set a column's width to their whole length."""
    return re.sub(r"([_/])", r"\1<wbr>", html.escape(text))


def _md_cell(text: str, bold: bool) -> str:
    text = text.replace("|", "\\|")
    return f"**{text}**" if bold and text else text


def grid_html(g: Grid) -> str:
    """One table part as HTML; the unit goes on its own line under the words to keep columns narrow."""
    def th(h: Label, num: bool) -> str:
        unit = f"<span class='unit'>{html.escape(h.unit)}</span>" if h.unit else ""
        return f"<th class='{'num' if num else 'text'}'>{html.escape(h.words)}{unit}</th>"

    head = "".join(th(h, n) for h, n in zip(g.headers, g.numeric, strict=True))
    body = "".join(("<tr class='total'>" if g.is_bold(i) else "<tr>")
                   + "".join(f"<td class='{'num' if n else 'text'}'>{html.escape(c) if n else breakable(c)}</td>"
                             for c, n in zip(r, g.numeric, strict=True)) + "</tr>" for i, r in enumerate(g.rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_table(cols: list[str], rows: Sequence[Sequence[Any]], record: bool = False) -> str:
    """The table as HTML, fitted to the page width (several tables when split)."""
    return "".join(grid_html(part) for part in fit(grid(cols, rows), record=record))
