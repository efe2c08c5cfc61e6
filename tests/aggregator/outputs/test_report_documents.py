"""The monthly report as people read it: report.html in a real browser (headless Chromium) and report.pdf's pages.

The report is written by the real pipeline from the fixture fleet (two sites, inference on one, a budget,
flexible work) with a previous month added, so every section has rows, the inference tables are wide, and
the headline has a change to show. The browser checks: nothing wider than the page at 1280 px and at A4
print width, every image loaded from the file itself (no network), the headline equal to the tables.
The PDF's pages, as images, keep everything inside their margins, and their text shows the same figures.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from chromium import CHROMIUM, Chromium, a4_content_width_px

from fixtures.agg.disclosure_fleet import FACILITY, H100, build
from wattfleet.aggregator.config.flexible import parse_flexible
from wattfleet.aggregator.outputs.pdf import PAGE_MARGIN_MM
from wattfleet.aggregator.outputs.report import write_report
from wattfleet.aggregator.store.database import rebuild_month

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package "
                                    "`chromium`; .ci/setup installs it)")
PRINT_MARGIN_MM = 12  # report.html's @page side margins (documents.STYLE)
MM_PER_PT = 25.4 / 72


def add_september(con: Any) -> None:
    """The same fleet one month earlier at half the energy: the headline's previous month."""
    for h in range(4):
        hour = datetime(2026, 9, 5, h)
        con.execute("INSERT INTO stg_grid_intensity VALUES ('CISO', ?, 'average', 250, 0.5, 'eia930', false, NULL)",
                    [hour])
        con.execute("INSERT INTO stg_grid_intensity VALUES ('SE', ?, 'average', 20, 0.9, 'static', false, NULL)",
                    [hour])
        ins = "INSERT INTO stg_energy_hourly VALUES (?, ?, 'c1', NULL, ?, ?, ?, ?, ?, ?, 'prometheus')"
        con.execute(ins, [hour, "a-gpu-1", "0", "gpu", "gpu", H100, "measured", 0.5 * 3.6e6])
        con.execute(ins, [hour, "b-gpu-1", "0", "gpu", "gpu", H100, "measured", 0.2 * 3.6e6])
    rebuild_month(con, date(2026, 9, 1))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("report")
    (d / "facility.yaml").write_text(FACILITY)
    cfg, con = build(str(d / "fleet.duckdb"), d / "facility.yaml")
    add_september(con)
    con.close()
    cfg.flexible = parse_flexible([{"namespace": "train-*", "allowed_hours_utc": [0, 2], "sites": ["a", "b"]}])
    out = d / "report"
    write_report(d / "fleet.duckdb", "2026-10", out, cfg)
    return out


def number(text: str) -> float:
    return float(text.replace(",", ""))


# What the page says, read in the browser: overflow, images, the headline and the tables it must equal.
PAGE_FACTS = r"""(() => {
  const width = document.documentElement.clientWidth;
  const over = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.right > width + 0.5 || r.left < -0.5))
      over.push(`${el.tagName}.${el.className} ${Math.round(r.left)}..${Math.round(r.right)}`);
  }
  const images = [...document.images].map(i => ({src: i.getAttribute('src').slice(0, 22),
    loaded: i.complete && i.naturalWidth > 0, alt: i.alt}));
  const cards = Object.fromEntries([...document.querySelectorAll('.card')].map(
    c => [c.dataset.figure,
          [c.querySelector('.value').firstChild.textContent, c.querySelector('.change').textContent]]));
  const table = id => [...document.querySelectorAll(`#${id} table`)].map(t => ({
    head: [...t.querySelectorAll('th')].map(th => th.firstChild.textContent),
    rows: [...t.querySelectorAll('tbody tr')].map(tr => [...tr.children].map(td => td.textContent))}));
  return {width, scrollWidth: document.documentElement.scrollWidth, over: over.slice(0, 10), images, cards,
          ghg: table('s-ghg-summary'), sites: table('s-sites'),
          text: document.body.innerText};
})()"""


@pytest.fixture(scope="module")
def browser() -> Any:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package `chromium`; .ci/setup installs it)")
    with Chromium() as b:
        yield b


@needs_chromium
@pytest.mark.parametrize("media", ["screen 1280 px", "print A4"])
def test_nothing_overflows_the_page_and_every_image_loads_from_the_file(report: Path, browser: Chromium,
                                                                        media: str) -> None:
    width = 1280 if media.startswith("screen") else a4_content_width_px(PRINT_MARGIN_MM)
    browser.open(report / "report.html", width, print_media=media.startswith("print"))
    facts = browser.evaluate(PAGE_FACTS)
    assert facts["scrollWidth"] <= facts["width"], facts["over"]
    assert facts["over"] == []
    assert len(facts["images"]) == len(list(report.glob("*.png"))) >= 7
    assert all(i["loaded"] and i["src"].startswith("data:image/png") and i["alt"] for i in facts["images"])
    assert [u for u in browser.requested_urls() if not u.startswith(("file:", "data:"))] == []


@needs_chromium
def test_headline_equals_the_tables(report: Path, browser: Chromium) -> None:
    browser.open(report / "report.html", 1280)
    facts = browser.evaluate(PAGE_FACTS)
    cards = facts["cards"]
    (summary,) = facts["ghg"]
    total = next(r for r in summary["rows"] if r[:2] == ["Scope 1 + Scope 2 + Scope 3", "Total"])
    heads = summary["head"]
    assert cards["location_based_kg_co2e"][0] == total[heads.index("Location-based")]
    assert cards["market_based_kg_co2e"][0] == total[heads.index("Market-based")]
    # Sites is split into parts that each repeat the site; the fleet's energy and water are the sites' sums.
    columns: dict[str, list[float]] = {}
    for part in facts["sites"]:
        for i, h in enumerate(part["head"][1:], start=1):
            columns[h] = [number(r[i]) for r in part["rows"]]
    assert len(facts["sites"]) > 1
    for key, heading in (("facility_kwh", "Facility energy"), ("it_kwh", "IT energy")):
        assert number(cards[key][0]) == pytest.approx(sum(columns[heading]), rel=5e-3, abs=0.01)
    water = sum(columns["Water, on-site"]) + sum(columns["Water, off-site"])
    assert number(cards["water_l"][0]) == pytest.approx(water, rel=5e-3)
    # October doubled September's IT energy at site b and added site a's CPU: the change is shown, signed.
    assert re.fullmatch(r"\+[\d.,]+ % vs 2026-09", cards["it_kwh"][1])
    assert re.fullmatch(r"[+-][\d.,]+ points vs 2026-09", cards["cfe_ratio"][1])
    assert "location_based_kg_co2e" not in facts["text"] and "scope2_location_kg" not in facts["text"]


def test_pdf_pages_keep_inside_their_margins_and_show_the_headline(report: Path) -> None:
    pdfium = pytest.importorskip("pypdfium2")
    from PIL import ImageChops, ImageOps

    doc = pdfium.PdfDocument(report / "report.pdf")
    text, images = "", 0
    try:
        assert len(doc) >= 3
        for page in doc:
            w_pt, h_pt = page.get_size()
            assert (round(w_pt * MM_PER_PT), round(h_pt * MM_PER_PT)) == (210, 297)  # A4 portrait
            dpi = 50
            im = ImageOps.grayscale(page.render(scale=dpi / 72).to_pil())
            ink = ImageChops.invert(im).point(lambda v: 255 if v > 8 else 0).getbbox()
            assert ink is not None
            px_per_mm = dpi / 25.4
            left, right = ink[0] / px_per_mm, (im.width - ink[2]) / px_per_mm
            assert left >= PAGE_MARGIN_MM - 1 and right >= PAGE_MARGIN_MM - 1, (left, right)
            text += page.get_textpage().get_text_range() + "\n"
            images += sum(1 for _ in page.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE]))
    finally:
        doc.close()
    assert images == len(list(report.glob("*.png")))
    html = (report / "report.html").read_text()
    for key in ("location_based_kg_co2e", "market_based_kg_co2e", "facility_kwh"):
        value = re.search(rf"data-figure='{key}'>.*?<div class='value'>([^<]+)<", html).group(1)  # type: ignore
        assert value in text, key
    assert "Shift analysis (flexible work)" in text and "Rejected and failed readings" in text


def test_markdown_keeps_every_section_for_diffs(report: Path) -> None:
    md = (report / "report.md").read_text()
    for title in ("## GHG Protocol inventory summary", "## Sites", "## Carbon-free energy", "## Data quality",
                  "### Rejected and failed readings", "## Shift analysis (flexible work)", "## Carbon budgets"):
        assert title in md
    assert "![Carbon-free energy score by day and hour (fleet)](cfe_heatmap.png)" in md
    assert "| Emissions, location-based (kg CO2e) |" in md


def test_charts_draw_each_scope_in_the_dashboards_colour(report: Path) -> None:
    from PIL import Image

    from wattfleet.core.palette import SCOPE_COLOURS

    def colours(name: str) -> set[str]:
        with Image.open(report / name) as im:
            return {"#{:02X}{:02X}{:02X}".format(*c[1][:3]) for c in im.convert("RGB").getcolors(1 << 20) or []}

    assert {SCOPE_COLOURS[k] for k in ("scope1", "scope2_location", "scope3_upstream")} <= colours("scopes.png")
    assert {SCOPE_COLOURS["scope2_location"], SCOPE_COLOURS["scope2_market"]} <= colours("location_vs_market.png")
