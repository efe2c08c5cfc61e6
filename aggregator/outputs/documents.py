"""report.md and report.html: the sections, notes and charts around the report tables."""

from __future__ import annotations

import html
from pathlib import Path

from wattfleet.aggregator.outputs.markup import html_table, md_table
from wattfleet.aggregator.outputs.queries import Tables
from wattfleet.aggregator.planning.budgets import BudgetBurn

BUDGET_NOTE = ("Used: location-based Scope 2 + Scope 1 + Scope 3 for teams and sites, location-based Scope 2 "
               "of inference energy for models (the figures `wattfleet serve` publishes).")
EMPTY_NOTES = {
    "inference": "No inference telemetry this month: point the exporters at the serving engines "
                 "(`wattfleet exporter --inference-config`).",
    "inference_engines": "No inference telemetry this month.",
    "by_team": "No workload telemetry this month: the exporters publish wattfleet_workload_energy_joules_total "
               "where workload attribution is on.",
}
SECTIONS = (
    ("ghg_summary", "GHG Protocol inventory summary (kg CO2e)",
     "Scope and category names as in the GHG Protocol Corporate Standard, Scope 2 Guidance and Scope 3 "
     "Standard. Scope 2 is reported location-based and market-based side by side. Scope 3 Category 2 "
     "(capital goods) is the full cradle-to-gate emissions of the hardware acquired in this period; the "
     "amortized embodied carbon of the per-use view below is not part of the inventory. Rows marked "
     "is_total are sums of the rows above them."),
    ("sites", "Sites", "PUE is applied once, to IT energy; water on-site = WUE x IT energy. Emissions in kg CO2e; "
     "scope3_embodied_kg is the amortized (per-use) embodied share, not the inventory's Category 2."),
    ("sci", "Per-use carbon intensity (SCI, amortized embodied carbon)",
     "SCI = (E x I + M) per R (Green Software Foundation, ISO/IEC 21031): location-based intensity, embodied "
     "carbon M amortized over service life by hours of use; Scope 1, market instruments and Scope 3 "
     "Category 3 excluded. Each figure names its functional unit R and what it includes."),
    ("inference", "Inference per phase (SCI per 1k tokens)",
     "sci_g_per_1k_tokens: location-based Scope 2 of the phase's GPU energy (x PUE) plus the GPUs' amortized "
     "embodied carbon by the phase's share of their energy, per 1,000 tokens of the phase."),
    ("inference_engines", "Inference per engine and model",
     "J per token by phase from IT energy; J per request and tokens per joule include idle; gCO2e per 1k tokens "
     "is location-based. method token_fit: NNLS estimate, with its fit status (declined: no per-phase split). "
     "Prompt tokens: prompt_split says whether the engine splits them into computed, cached and transferred; "
     "J per computed prefill token and the cache hit ratio exist only where it does (not split by engine: its "
     "prefill tokens include cache hits)."),
    ("by_team", "By team",
     "Each team's workloads' share of their nodes (config `teams:`; namespace and team only from the exporter's "
     "workload series). Rows in parentheses are energy of no workload; the rows add up to the fleet. The monthly "
     "chargeback table is chargeback_by_team.csv / .parquet."),
    ("top_emitters", "Top emitting nodes",
     "Ranked by the emissions a node causes: location-based Scope 2 of its facility energy plus its amortized "
     "embodied share (caused_location_kg). Scope 1 stays at the site and is not spread over nodes."),
    ("data_quality", "Data quality", "Filled grid hours are flagged in the facts; estimated energy is marked."),
)
# A part of the data-quality section: what the exporters left out, counted rather than summed.
REJECTIONS_TITLE = "Rejected and failed readings"
REJECTIONS_NOTE = ("Readings the exporters rejected as implausible or failed to take, per site, node, collector "
                   "and reason (wattfleet_collector_errors_total); these readings were not summed into any figure "
                   "of this report.")
REJECTIONS_NONE = "No reading was rejected or failed this month."


def rejections_markdown(cols: list[str], rows: list[tuple[object, ...]]) -> list[str]:
    """The rejected-readings part of the data-quality section; one line when there were none."""
    if not rows:
        return [f"### {REJECTIONS_TITLE}", "", REJECTIONS_NONE, ""]
    return [f"### {REJECTIONS_TITLE}", "", REJECTIONS_NOTE, "", md_table(cols, rows), ""]


def rejections_html(cols: list[str], rows: list[tuple[object, ...]]) -> str:
    """The same part as HTML."""
    if not rows:
        return f"<h3>{REJECTIONS_TITLE}</h3><p>{REJECTIONS_NONE}</p>"
    return f"<h3>{REJECTIONS_TITLE}</h3><p>{html.escape(REJECTIONS_NOTE)}</p>{html_table(cols, rows)}"


def write_documents(month: str, tables: Tables,
               charts: list[tuple[str, str]], out: Path, burns: list[BudgetBurn],
               shift: tuple[str, str] | None = None) -> list[Path]:
    md = [f"# wattfleet monthly report: {month}", ""]
    body = [f"<h1>wattfleet monthly report: {html.escape(month)}</h1>"]
    for name, title, note in SECTIONS:
        cols, rows = tables[name]
        if not rows:  # say so rather than print a header over nothing
            note = f"{note} {EMPTY_NOTES.get(name, 'Nothing this month.')}".strip()
        md += [f"## {title}", "", note, "", md_table(cols, rows), ""] if note else \
            [f"## {title}", "", md_table(cols, rows), ""]
        body += [f"<h2>{html.escape(title)}</h2>", f"<p>{html.escape(note)}</p>" if note else "",
                 html_table(cols, rows)]
        if name == "data_quality":
            md += rejections_markdown(*tables["rejections"])
            body.append(rejections_html(*tables["rejections"]))
    if burns:
        cols = ["kind", "owner", "month", "budget_kg", "used_kg", "used_ratio"]
        rows = [(b.owner_kind, b.owner, b.period, b.budget_kg, b.used_kg, b.used_ratio) for b in burns]
        md += ["## Carbon budgets (kgCO2e)", "", BUDGET_NOTE, "", md_table(cols, rows), ""]
        body += ["<h2>Carbon budgets (kgCO2e)</h2>", f"<p>{html.escape(BUDGET_NOTE)}</p>", html_table(cols, rows)]
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
