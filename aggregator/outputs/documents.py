"""report.md and report.html: the headline, then the sections (note, table, charts) in order.

The section list is data (:data:`SECTIONS`, :class:`Section`): adding a part
of the report is adding an entry, and the Markdown, the HTML and the PDF all
show it. The HTML is one self-contained file: charts are embedded as data URIs
and the style sheet is inline, so it opens offline, attaches to a mail and
prints (print styles: A4, no split tables or charts where avoidable).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from wattfleet.aggregator.outputs.charts import DPI, Chart
from wattfleet.aggregator.outputs.headline import TOTALS_NOTE, Headline, change_text, value_text
from wattfleet.aggregator.outputs.markup import html_table, inline_html, md_table
from wattfleet.aggregator.outputs.queries import Tables
from wattfleet.aggregator.outputs.sections import NOTHING, Section
from wattfleet.aggregator.planning.budgets import BudgetBurn
from wattfleet.aggregator.planning.shift import ShiftRow
from wattfleet.core.palette import colour

BUDGET_NOTE = ("Used: location-based Scope 2 + Scope 1 + Scope 3 for teams and sites, location-based Scope 2 "
               "of inference energy for models (the figures `wattfleet serve` publishes).")
EMPTY_NOTES = {
    "inference": "No inference telemetry this month: point the exporters at the serving engines "
                 "(`wattfleet exporter --inference-config`).",
    "inference_engines": "No inference telemetry this month.",
    "by_team": "No workload telemetry this month: the exporters publish wattfleet_workload_energy_joules_total "
               "where workload attribution is on.",
    "market_instruments": "No contractual instrument covered any site this month: market-based Scope 2 is "
                          "priced at the residual mix (or, where none is configured, location-based).",
}
# (table name, title, note), in report order. A name that is no report table is a section of charts only.
SECTIONS = (
    ("ghg_summary", "GHG Protocol inventory summary",
     "Scope and category names as in the GHG Protocol Corporate Standard, Scope 2 Guidance and Scope 3 "
     "Standard. Scope 2 is reported location-based and market-based side by side. Scope 3 Category 2 "
     "(capital goods) is the full cradle-to-gate emissions of the hardware acquired in this period; the "
     "amortized embodied carbon of the per-use view below is not part of the inventory. Total rows (in bold) "
     "are sums of the rows above them."),
    ("market_coverage", "Market-based Scope 2: coverage and residual mix per site",
     "GHG Protocol Scope 2 Guidance, market-based method: contractual instruments (capped at each site-month's "
     "consumption, no banking) cover the \"Coverage\" share of facility energy; the rest is priced at the residual "
     "mix, whose source is given. docs/accounting.md (section 6.2) lists the Scope 2 quality criteria."),
    ("market_instruments", "Market-based Scope 2: instruments applied",
     "Each instrument applied to a site this period: type, vintage (the period its energy was generated in), "
     "factor, the volume allocated to the site and the part applied after the cap."),
    ("energy", "Energy", "Facility energy is IT energy x PUE; the IT bars sit inside the facility bars."),
    ("sites", "Sites", "PUE is applied once, to IT energy; water on-site = WUE x IT energy. \"Embodied, "
     "amortized\" is the per-use share of embodied carbon, not the inventory's Category 2."),
    ("cfe", "Carbon-free energy",
     "Hourly CFE score: in each hour, the share of facility energy matched by carbon-free supply on the grid "
     "(24/7 CFE); hours are never netted against each other."),
    ("sci", "Per-use carbon intensity (SCI, amortized embodied carbon)",
     "SCI = (E x I + M) per R (Green Software Foundation, ISO/IEC 21031): location-based intensity, embodied "
     "carbon M amortized over service life by hours of use; Scope 1, market instruments and Scope 3 "
     "Category 3 excluded. Each figure names its functional unit R and what it includes."),
    ("inference", "Inference per phase (SCI per 1k tokens)",
     "SCI per 1k tokens: location-based Scope 2 of the phase's GPU energy (x PUE) plus the GPUs' amortized "
     "embodied carbon by the phase's share of their energy, per 1,000 tokens of the phase."),
    ("inference_engines", "Inference per engine and model",
     "J per token by phase from IT energy; J per request and tokens per joule include idle; g per 1k tokens is "
     "location-based Scope 2 only (the SCI figures above add embodied carbon). method token_fit: NNLS "
     "estimate, with its fit status (declined: no per-phase split). "
     "Prompt tokens: prompt_split says whether the engine splits them into computed, cached and transferred; "
     "J per computed prefill token and the cache hit ratio exist only where it does (not split by engine: its "
     "prefill tokens include cache hits). phase_attribution: the exporter's stated assumption; "
     "mixed_forward_as_prefill means prefill forwards also decoded the running batch (TGI chunked prefill, "
     "SGLang mixed chunks) and all their time counts as prefill: prefill energy is overstated, decode's understated."),
    ("by_team", "By team",
     "Each team's workloads' share of their nodes (config `teams:`; namespace and team only from the exporter's "
     "workload series). Rows in parentheses are energy of no workload; the rows add up to the fleet. The monthly "
     "chargeback table is chargeback_by_team.csv / .parquet."),
    ("top_emitters", "Top emitting nodes",
     "Ranked by the emissions a node causes: location-based Scope 2 of its facility energy plus its amortized "
     "embodied share. Scope 1 stays at the site and is not spread over nodes."),
    ("data_quality", "Data quality", "Filled grid hours are flagged in the facts; estimated energy is marked."),
)
# Tables that are one row of figures by design: shown as one line per figure.
RECORDS = {"data_quality"}
# A part of the data-quality section: what the exporters left out, counted rather than summed.
REJECTIONS_TITLE = "Rejected and failed readings"
REJECTIONS_NOTE = ("Readings the exporters rejected as implausible or failed to take, per site, node, collector "
                   "and reason (wattfleet_collector_errors_total); these readings were not summed into any figure "
                   "of this report.")
REJECTIONS_NONE = "No reading was rejected or failed this month."
# A part of the data-quality section: the grid hours per zone that rest on filled or implausible data
# (sql/queries/report/data_quality.sql; every column in data_quality_zones.csv, one row per hour and issue in
# data_quality_hours.csv).
GRID_QUALITY_TITLE = "Grid data quality per zone"
GRID_QUALITY_NOTE = ("Hours (UTC, start/end) whose grid intensity was filled, by which rule, or which the source's "
                     "own generation mix makes implausible (kept and flagged unless the grid spec says "
                     "implausible: fill or refuse), with the facility energy and location-based Scope 2 (kg CO2e) "
                     "resting on them and on estimated energy.")
GRID_QUALITY_COLUMNS = ("zone", "intensity_sources", "filled_hours", "filled_hours_utc", "fill_rules",
                        "filled_intensity_kwh", "filled_intensity_kg", "implausible_hours", "implausible_hours_utc",
                        "implausible_kg", "missing_intensity_hours", "estimated_energy_kwh", "estimated_energy_kg")
SHIFT_TITLE = "Shift analysis (flexible work)"
SHIFT_NOTE = ("Emitted (location-based Scope 2) vs the same energy in the cleanest allowed hours of its window "
              "(at most its peak hourly energy per hour) or at the cleanest allowed site.")
SHIFT_COLUMNS = ["workload", "it_kwh", "emitted_kg", "cleanest_hours_kg", "cleanest_site", "cleanest_site_kg",
                 "saving_ratio"]
CSS_PX_PER_INCH = 96  # charts show at their drawn size in inches, as on paper
FOOTER = "Tables are also written as CSV and Parquet next to this file."


def shift_section(rows: Sequence[ShiftRow]) -> Section:
    """The shift analysis as a section (its notes as bullet points)."""
    return Section("shift", SHIFT_TITLE, SHIFT_NOTE, SHIFT_COLUMNS,
                   [(f"{r.kind}={r.key}", r.it_kwh, r.actual_kg, r.time_shift_kg, r.best_site, r.site_shift_kg,
                     r.saving_ratio) for r in rows],
                   empty="No flexible work ran this month.",
                   notes=[f"{r.kind}={r.key}: {n}" for r in rows for n in r.notes])


def grid_quality_section(cols: list[str], rows: list[tuple[object, ...]]) -> Section:
    """The per-zone grid data quality as a part of the data-quality section (the CSV has every column)."""
    keep = [cols.index(c) for c in GRID_QUALITY_COLUMNS]
    return Section("grid_quality", GRID_QUALITY_TITLE, GRID_QUALITY_NOTE, list(GRID_QUALITY_COLUMNS),
                   [tuple(r[i] for i in keep) for r in rows], empty="No grid hours this month.", level=3)


def report_sections(tables: Tables, charts: Sequence[Chart], burns: Sequence[BudgetBurn] = (),
                    shift: Sequence[ShiftRow] | None = None) -> list[Section]:
    """Every section of the report, in order, with its table and charts."""
    sections = []
    for name, title, note in SECTIONS:
        cols, rows = tables[name] if name in tables else (None, [])
        sections.append(Section(name, title, note, cols, rows, empty=EMPTY_NOTES.get(name, NOTHING),
                                record=name in RECORDS))
        if name == "data_quality":
            sections.append(grid_quality_section(*tables["data_quality_zones"]))
            sections.append(Section("rejections", REJECTIONS_TITLE, REJECTIONS_NOTE, *tables["rejections"],
                                    empty=REJECTIONS_NONE, level=3))
    if burns:
        sections.append(Section("budgets", "Carbon budgets", BUDGET_NOTE,
                                ["kind", "owner", "month", "budget_kg", "used_kg", "used_ratio"],
                                [(b.owner_kind, b.owner, b.period, b.budget_kg, b.used_kg, b.used_ratio)
                                 for b in burns]))
    if shift is not None:
        sections.append(shift_section(shift))
    by_key = {s.key: s for s in sections}
    leftover: list[Chart] = []
    for chart in charts:
        (by_key[chart.section].charts if chart.section in by_key else leftover).append(chart)
    if leftover:
        sections.append(Section("charts", "Charts", charts=leftover))
    return sections


# --- Markdown ---------------------------------------------------------------------------------------------
def headline_markdown(head: Headline) -> list[str]:
    rows = [f"| {f.label.header} | {value_text(f)} | {change_text(f, head)} |" for f in head.figures]
    return ["| This month | | Change |", "|---|---:|---|", *rows, "", TOTALS_NOTE, ""]


def section_markdown(s: Section) -> list[str]:
    out = [f"{'#' * s.level} {s.title}", ""]
    if s.is_empty:
        return out + [s.empty, ""]
    if s.note:
        out += [s.note, ""]
    if s.cols is not None:
        out += [md_table(s.cols, s.rows, s.record), ""]
    if s.notes:
        out += [f"- {n}" for n in s.notes] + [""]
    for c in s.charts:
        out += [f"![{c.title}]({c.name})", ""]
    return out


def markdown(month: str, head: Headline, sections: Sequence[Section]) -> str:
    md = [f"# wattfleet monthly report: {month}", "", *headline_markdown(head)]
    for s in sections:
        md += section_markdown(s)
    return "\n".join(md + [FOOTER, ""])


# --- HTML -----------------------------------------------------------------------------------------------
STYLE = """
:root{--ink:#1f2328;--muted:#59636e;--rule:#d1d9e0;--head:#f6f8fa}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;color:var(--ink);
 max-width:60rem;margin:0 auto;padding:1.5rem 1rem 3rem;line-height:1.45;font-size:15px}
h1{font-size:1.6rem;margin:0 0 .2rem}
h2{font-size:1.2rem;margin:2rem 0 .4rem;padding-bottom:.2rem;border-bottom:1px solid var(--rule)}
h3{font-size:1rem;margin:1.2rem 0 .3rem}
p{margin:.3rem 0 .6rem;max-width:48rem}
.sub{color:var(--muted);margin-bottom:1rem}
.empty{color:var(--muted);font-style:italic}
table{border-collapse:collapse;margin:.4rem 0 .9rem;font-size:.85rem;max-width:100%}
th,td{padding:.25rem .55rem;border-bottom:1px solid var(--rule);vertical-align:top}
th{background:var(--head);font-weight:600;vertical-align:bottom}
th.text,td.text{text-align:left;overflow-wrap:break-word}
th.num,td.num{text-align:right}
td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
tr.total td{font-weight:650}
th .unit{display:block;font-weight:400;color:var(--muted);font-size:.85em}
figure{margin:.8rem 0 1.2rem}
figure img{display:block;max-width:100%;height:auto}
code{font-size:.9em;background:var(--head);padding:0 .2em;border-radius:3px}
.headline{display:grid;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr));gap:.6rem;margin:.8rem 0 .4rem}
.card{border:1px solid var(--rule);border-left:6px solid var(--accent);border-radius:6px;padding:.5rem .75rem}
.card .label{font-size:.85rem;color:var(--muted)}
.card .value{font-size:1.5rem;font-weight:650;font-variant-numeric:tabular-nums}
.card .unit{font-size:.9rem;font-weight:400;color:var(--muted);margin-left:.25rem}
.card .change{font-size:.8rem;color:var(--muted)}
.totals{font-size:.8rem;color:var(--muted)}
@page{size:A4;margin:14mm 12mm}
@media print{
 body{max-width:none;margin:0;padding:0;font-size:9.5pt}
 h2{break-after:avoid;margin-top:1.2rem}
 h3{break-after:avoid}
 table,figure,.card{break-inside:avoid}
 thead{display:table-header-group}
 .headline{grid-template-columns:repeat(3,1fr)}
 figure img{max-height:95mm;width:auto}
}
"""


def data_uri(png: bytes) -> str:
    """The PNG as a data: URI, so the HTML needs no file next to it and no network."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels from the PNG's IHDR chunk (bytes 16-24, big-endian)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def headline_html(head: Headline) -> str:
    cards = []
    for f in head.figures:
        value = value_text(f)
        cards.append(
            f"<div class='card' style='--accent:{colour(f.colour_key)}' data-figure='{f.key}'>"
            f"<div class='label'>{html.escape(f.label.words)}</div>"
            f"<div class='value'>{html.escape(value)}<span class='unit'>{html.escape(f.label.unit)}</span></div>"
            f"<div class='change'>{html.escape(change_text(f, head))}</div></div>")
    return (f"<section class='headline' aria-label='This month at a glance'>{''.join(cards)}</section>"
            f"<p class='totals'>{inline_html(TOTALS_NOTE)}</p>")


def section_html(s: Section, out: Path) -> str:
    tag = f"h{s.level}"
    parts = [f"<section id='{s.anchor}'><{tag}>{html.escape(s.title)}</{tag}>"]
    if s.is_empty:
        parts.append(f"<p class='empty'>{inline_html(s.empty)}</p>")
    else:
        if s.note:
            parts.append(f"<p>{inline_html(s.note)}</p>")
        if s.cols is not None:
            parts.append(html_table(s.cols, s.rows, s.record))
        if s.notes:
            parts.append("<ul>" + "".join(f"<li>{inline_html(n)}</li>" for n in s.notes) + "</ul>")
        for c in s.charts:
            data = (out / c.name).read_bytes()
            width, height = png_size(data)
            parts.append(f"<figure><img src='{data_uri(data)}' alt='{html.escape(c.title)}' "
                         f"width='{round(width * CSS_PX_PER_INCH / DPI)}' "
                         f"height='{round(height * CSS_PX_PER_INCH / DPI)}'></figure>")
    return "".join(parts) + "</section>"


def html_page(month: str, head: Headline, sections: Sequence[Section], out: Path) -> str:
    body = [f"<h1>wattfleet monthly report: {html.escape(month)}</h1>",
            f"<p class='sub'>Fleet energy, emissions, water and carbon-free energy for {html.escape(month)} "
            "(UTC), from the aggregator's facts.</p>", headline_html(head)]
    body += [section_html(s, out) for s in sections]
    body.append(f"<p class='sub'>{html.escape(FOOTER)}</p>")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>wattfleet monthly report {html.escape(month)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


def write_documents(month: str, head: Headline, sections: Sequence[Section], out: Path) -> list[Path]:
    """report.md and report.html in ``out`` (the charts must be there already)."""
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(markdown(month, head, sections))
    html_path.write_text(html_page(month, head, sections, out))
    return [md_path, html_path]
