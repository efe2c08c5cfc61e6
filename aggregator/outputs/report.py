"""The monthly report: Markdown and HTML with PNG charts, CSV and Parquet tables.

Everything is read from the facts and rollups (``sql/report.sql``), so the
report shows exactly what was accounted. Location- and market-based Scope 2
are always shown side by side.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from wattfleet.aggregator.config.model import FacilityConfig
from wattfleet.aggregator.inference.fit_step import copy_table, engine_report_table, write_table
from wattfleet.aggregator.planning.budgets import BudgetBurn, budget_burn_for
from wattfleet.aggregator.planning.shift import report_section as shift_report_section
from wattfleet.aggregator.store.database import open_store, sql_text


class ReportError(RuntimeError):
    """Nothing to report (no facts for the month) or the database cannot be read."""


def report_queries() -> dict[str, str]:
    """``-- name: X`` blocks of sql/report.sql."""
    text = sql_text("report.sql")
    parts = re.split(r"^-- name: (\w+)\s*$", text, flags=re.M)
    return {parts[i]: parts[i + 1].strip().rstrip(";") for i in range(1, len(parts), 2)}


def _month_bounds(month: str) -> tuple[datetime, datetime]:
    y, m = (int(x) for x in month.split("-"))
    return datetime(y, m, 1), datetime(y + (m == 12), m % 12 + 1, 1)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v == 0:
            return "0"
        return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.1f}"
    return str(v)


def _md_table(cols: list[str], rows: list[tuple[Any, ...]]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def _html_table(cols: list[str], rows: list[tuple[Any, ...]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _charts(tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]], out: Path) -> list[tuple[str, str]]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: list[tuple[str, str]] = []

    def save(fig: Any, name: str, title: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        charts.append((name, title))

    cols, rows = tables["daily"]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    days = [r[0] for r in rows]
    ax.bar(days, [r[2] for r in rows], label="facility kWh", color="#9ecae1")
    ax.bar(days, [r[1] for r in rows], label="IT kWh", color="#3182bd")
    ax.set_ylabel("kWh")
    ax.legend()
    fig.autofmt_xdate()
    save(fig, "energy.png", "Energy per day (IT inside facility)")

    cols, rows = tables["sites"]
    c = {n: i for i, n in enumerate(cols)}
    sites = [r[c["site"]] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bottom = [0.0] * len(rows)
    for key, label in (("scope1_kg", "Scope 1"), ("scope2_location_kg", "Scope 2 (location)"),
                       ("scope3_embodied_kg", "Scope 3 embodied"), ("scope3_upstream_kg", "Scope 3 upstream")):
        vals = [r[c[key]] or 0.0 for r in rows]
        ax.bar(sites, vals, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("kgCO2e")
    ax.legend()
    save(fig, "scopes.png", "Scope 1/2/3 by site (location-based Scope 2)")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r[c["scope2_location_kg"]] or 0 for r in rows], 0.4, label="location-based")
    ax.bar([i + 0.2 for i in x], [r[c["scope2_market_kg"]] or 0 for r in rows], 0.4, label="market-based")
    ax.set_xticks(list(x), sites)
    ax.set_ylabel("kgCO2e")
    ax.legend()
    save(fig, "location_vs_market.png", "Scope 2: location-based vs market-based")

    cols, rows = tables["cfe_by_hour_of_day"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for site in sorted({r[0] for r in rows}):
        pts = [(r[1], r[2]) for r in rows if r[0] == site and r[2] is not None]
        ax.plot([p[0] for p in pts], [p[1] * 100 for p in pts], marker="o", label=site)
    ax.set_xlabel("hour of day (UTC)")
    ax.set_ylabel("CFE %")
    ax.set_ylim(0, 100)
    ax.legend()
    save(fig, "cfe_by_hour.png", "Hourly carbon-free energy score by hour of day")

    cols, rows = tables["top_emitters"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh([r[0] for r in rows][::-1], [r[2] or 0 for r in rows][::-1], color="#de2d26")
    ax.set_xlabel("kgCO2e (location-based, all scopes)")
    save(fig, "top_emitters.png", "Top emitting nodes")

    cols, rows = tables["sites"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(sites, [r[c["water_onsite_l"]] or 0 for r in rows], label="on-site (WUE x IT)")
    ax.bar(sites, [r[c["water_offsite_l"]] or 0 for r in rows], bottom=[r[c["water_onsite_l"]] or 0 for r in rows],
           label="off-site (grid)")
    ax.set_ylabel("litres")
    ax.legend()
    save(fig, "water.png", "Water")
    return charts


def write_report(db: str | Path, month: str, out_dir: str | Path, cfg: FacilityConfig | None = None
                 ) -> list[Path]:
    """Write the report for ``month`` (YYYY-MM) into ``out_dir``; returns the files written."""
    if not Path(db).exists():
        raise ReportError(f"{db}: no such database; run `wattfleet aggregate` first")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start, end = _month_bounds(month)
    try:
        con = open_store(db, read_only=True)
        con.execute("SET threads = 1")  # same sums in the same order: the same month reports identically
    except duckdb.Error as exc:
        raise ReportError(f"{db}: cannot open: {exc}") from exc
    try:
        n = con.execute("SELECT count(*) FROM fact_device_hour WHERE hour_utc >= ? AND hour_utc < ?",
                        [start, end]).fetchone()[0]
        if not n:
            raise ReportError(f"{db}: no facts for {month}; run `wattfleet aggregate --from {month}-01` first")
        params = {"month_start": start, "month_end": end}
        tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        written: list[Path] = []
        for name, sql in report_queries().items():
            used = {k: v for k, v in params.items() if f"${k}" in sql}
            # Run each query once: the Markdown/HTML tables and both files read the same result.
            con.execute(f"CREATE OR REPLACE TEMP TABLE report_table AS ({sql})", used)
            rel = con.execute("SELECT * FROM report_table")
            cols = [d[0] for d in rel.description]
            rows = rel.fetchall()
            tables[name] = (cols, rows)
            written += copy_table(con, "report_table", out, name)
        tables["inference_engines"] = engine_report_table(*tables["inference_engine_inputs"])
        written += write_table(out, "inference_engines", *tables["inference_engines"])
        shift = shift_report_section(con, cfg, start, end)  # flexible work vs its cleanest hours/site
        burns = [b for b in budget_burn_for(con, cfg.budgets) if b.period == month] if cfg is not None else []
    finally:
        con.close()
    charts = _charts(tables, out)
    written += [out / name for name, _ in charts]
    written += _documents(month, tables, charts, out, burns, shift)
    return written


BUDGET_NOTE = ("Used: location-based Scope 2 + Scope 1 + Scope 3 for teams and sites, location-based Scope 2 "
               "of inference energy for models (the figures `wattfleet serve` publishes).")
EMPTY_NOTES = {
    "inference": "No inference telemetry this month: point the exporters at the serving engines "
                 "(`wattfleet exporter --inference-config`).",
    "inference_engines": "No inference telemetry this month.",
}
SECTIONS = (
    ("ghg_summary", "GHG Protocol summary (tCO2e)",
     "Scope 2 is reported location-based and market-based side by side (GHG Protocol Scope 2 Guidance)."),
    ("sites", "Sites", "PUE is applied once, to IT energy; water on-site = WUE x IT energy."),
    ("per_unit", "Per GPU-hour (SCI-style)", "SCI = (E x I + M) per R with location-based intensity."),
    ("inference", "Inference per phase (SCI per 1k tokens)", ""),
    ("inference_engines", "Inference per engine and model",
     "J per token by phase from IT energy; J per request and tokens per joule include idle; gCO2e per 1k tokens "
     "is location-based. method token_fit: NNLS estimate, with its fit status (declined: no per-phase split)."),
    ("top_emitters", "Top emitting nodes", ""),
    ("data_quality", "Data quality", "Filled grid hours are flagged in the facts; estimated energy is marked."),
)


def _documents(month: str, tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]],
               charts: list[tuple[str, str]], out: Path, burns: list[BudgetBurn],
               shift: tuple[str, str] | None = None) -> list[Path]:
    md = [f"# wattfleet monthly report: {month}", ""]
    body = [f"<h1>wattfleet monthly report: {html.escape(month)}</h1>"]
    for name, title, note in SECTIONS:
        cols, rows = tables[name]
        if not rows:  # say so rather than print a header over nothing
            note = f"{note} {EMPTY_NOTES.get(name, 'Nothing this month.')}".strip()
        md += [f"## {title}", "", note, "", _md_table(cols, rows), ""] if note else \
            [f"## {title}", "", _md_table(cols, rows), ""]
        body += [f"<h2>{html.escape(title)}</h2>", f"<p>{html.escape(note)}</p>" if note else "",
                 _html_table(cols, rows)]
    if burns:
        cols = ["kind", "owner", "month", "budget_kg", "used_kg", "used_ratio"]
        rows = [(b.owner_kind, b.owner, b.period, b.budget_kg, b.used_kg, b.used_ratio) for b in burns]
        md += ["## Carbon budgets (kgCO2e)", "", BUDGET_NOTE, "", _md_table(cols, rows), ""]
        body += ["<h2>Carbon budgets (kgCO2e)</h2>", f"<p>{html.escape(BUDGET_NOTE)}</p>", _html_table(cols, rows)]
    if shift is not None:
        md += [shift[0]]
        body.append(shift[1])
    md += ["## Charts", ""]
    body.append("<h2>Charts</h2>")
    for name, title in charts:
        md += [f"![{title}]({name})", ""]
        body.append(f'<figure><img src="{name}" alt="{html.escape(title)}"><figcaption>{html.escape(title)}'
                    "</figcaption></figure>")
    md += ["Tables are also written as CSV and Parquet next to this file.", ""]
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text("\n".join(md))
    style = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}")
    html_path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>wattfleet {html.escape(month)}"
                         f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")
    return [md_path, html_path]
