"""The monthly report: Markdown, self-contained HTML and PDF with PNG charts, CSV and Parquet tables.

Everything is read from the facts and rollups (``sql/queries/report/``), so
the report shows exactly what was accounted. Location- and market-based
Scope 2 are always shown side by side. This module runs the steps: the SQL
tables (``queries``), the Python-derived tables (``tables``), the headline
(``headline``), the charts (``charts``), the sections (``documents``) and the
documents drawn from them (``documents`` for Markdown and HTML, ``pdf``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from wattfleet.aggregator.config.model import FacilityConfig
from wattfleet.aggregator.outputs.charts import write_charts
from wattfleet.aggregator.outputs.columns import write_readme
from wattfleet.aggregator.outputs.documents import report_sections, write_documents
from wattfleet.aggregator.outputs.headline import Headline, headline_from_store
from wattfleet.aggregator.outputs.methodology import methodology_sections
from wattfleet.aggregator.outputs.pdf import write_pdf
from wattfleet.aggregator.outputs.queries import Tables, month_bounds, month_fact_rows, run_report_queries
from wattfleet.aggregator.outputs.sections import Section
from wattfleet.aggregator.outputs.tables import engine_report_table, write_table
from wattfleet.aggregator.planning.budgets import BudgetBurn, budget_burn_for
from wattfleet.aggregator.planning.shift import ShiftRow
from wattfleet.aggregator.planning.shift import report_rows as shift_report_rows
from wattfleet.aggregator.store.connection import open_store


class ReportError(RuntimeError):
    """Nothing to report (no facts for the month) or the database cannot be read."""


def write_report(db: str | Path, month: str, out_dir: str | Path, cfg: FacilityConfig | None = None
                 ) -> list[Path]:
    """Write the report for ``month`` (YYYY-MM) into ``out_dir``; returns the files written."""
    if not Path(db).exists():
        raise ReportError(f"{db}: no such database; run `wattfleet aggregate` first")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start, end = month_bounds(month)
    con = open_store(db, read_only=True)  # StoreError: unusable, locked or newer than this wattfleet
    con.execute("SET threads = 1")  # same sums in the same order: the same month reports identically
    try:
        if not month_fact_rows(con, start, end):
            raise ReportError(f"{db}: no facts for {month}; run `wattfleet aggregate --from {month}-01` first")
        tables, written = run_report_queries(con, start, end, out)
        tables["inference_engines"] = engine_report_table(*tables["inference_engine_inputs"])
        written += write_table(out, "inference_engines", *tables["inference_engines"], period=(start, end))
        head = headline_from_store(con, month, start, end, tables)
        shift = shift_report_rows(con, cfg, start, end)  # flexible work vs its cleanest hours/site
        burns = [b for b in budget_burn_for(con, cfg.budgets) if b.period == month] if cfg is not None else []
        methodology = methodology_sections(con, db, start, end)  # formulas, config version, lineage
    finally:
        con.close()
    written += render_report(month, tables, head, out, burns, shift, methodology)
    return [*written, write_readme(out)]  # every column of every table file, for the analysts loading them


def render_report(month: str, tables: Tables, head: Headline, out: Path, burns: Sequence[BudgetBurn] = (),
                  shift: Sequence[ShiftRow] | None = None, last: Sequence[Section] = ()) -> list[Path]:
    """Charts, report.md, report.html and report.pdf from the month's tables; returns the files written.
    ``last``: sections after all others (the methodology)."""
    charts = write_charts(tables, out)
    sections = report_sections(tables, charts, burns, shift) + list(last)
    return [out / c.name for c in charts] + write_documents(month, head, sections, out) + \
        [write_pdf(month, head, sections, out)]
