"""report.pdf: the same headline, sections, tables and charts as report.html, for the audit file.

Drawn with fpdf2, a pure-Python PDF writer, rather than printed from the HTML:
it needs no browser at run time (Chromium's print-to-PDF would) and no system
libraries (WeasyPrint needs Pango and its fonts from the distribution), and
its other dependencies (Pillow, fontTools) already come with matplotlib, so the
report extra grows by fpdf2 and defusedxml only. The text is real text
(searchable, copyable), the font is the DejaVu Sans that matplotlib ships
(embedded, so every character of the labels prints), and tables use the same
:func:`markup.fit` parts as the HTML, so a wide table is split the same way in
both.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wattfleet.aggregator.outputs.charts import DPI
from wattfleet.aggregator.outputs.headline import TOTALS_NOTE, Headline, change_text, value_text
from wattfleet.aggregator.outputs.markup import Grid, fit, grid
from wattfleet.aggregator.outputs.sections import Section
from wattfleet.core.palette import colour

PAGE_MARGIN_MM = 12.0  # left, right; the browser test checks nothing is drawn beyond them
TOP_MARGIN_MM = 14.0
FONT = "DejaVu"
BODY_PT, SMALL_PT, TABLE_PT = 9.5, 8.0, 8.0
INK, MUTED, RULE, HEAD_FILL = (31, 35, 40), (89, 99, 110), (209, 217, 224), (246, 248, 250)
CELL_PADDING_MM = 1.2
MM_PER_INCH = 25.4


def _fpdf() -> Any:
    from fpdf import FPDF  # lazy: optional dependency (report extra), imported only when a PDF is written

    return FPDF


def _fonts_dir() -> Path:
    import matplotlib  # lazy: optional dependency (report extra); its bundled DejaVu fonts are the PDF's

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


class ReportPdf:
    """An A4 portrait document in the report's layout."""

    def __init__(self, month: str) -> None:
        pdf = _fpdf()(orientation="P", unit="mm", format="A4")
        fonts = _fonts_dir()
        pdf.add_font(FONT, "", str(fonts / "DejaVuSans.ttf"))
        pdf.add_font(FONT, "B", str(fonts / "DejaVuSans-Bold.ttf"))
        pdf.add_font(FONT, "I", str(fonts / "DejaVuSans-Oblique.ttf"))
        pdf.set_margins(PAGE_MARGIN_MM, TOP_MARGIN_MM, PAGE_MARGIN_MM)
        pdf.set_auto_page_break(True, margin=TOP_MARGIN_MM)
        pdf.set_title(f"wattfleet monthly report {month}")
        pdf.set_creator("wattfleet")
        footer_text = f"wattfleet monthly report {month}"

        def footer() -> None:
            pdf.set_y(-10)
            pdf.set_font(FONT, "", 7)
            pdf.set_text_color(*MUTED)
            pdf.cell(0, 4, f"{footer_text} - page {pdf.page_no()}/{{nb}}", align="C")

        pdf.footer = footer
        pdf.add_page()
        self.pdf = pdf

    @property
    def width(self) -> float:
        """The content width between the side margins (mm)."""
        return float(self.pdf.w - 2 * PAGE_MARGIN_MM)

    def text(self, text: str, size: float = BODY_PT, style: str = "", colour_rgb: tuple[int, int, int] = INK,
             gap: float = 1.5) -> None:
        self.pdf.set_font(FONT, style, size)
        self.pdf.set_text_color(*colour_rgb)
        self.pdf.multi_cell(self.width, size * 0.5, text.replace("`", ""), align="L", new_x="LMARGIN",
                            new_y="NEXT")
        self.pdf.ln(gap)

    def heading(self, title: str, level: int, keep_with_mm: float = 25.0) -> None:
        """A section title, moved to the next page with what follows unless ``keep_with_mm`` of it fits."""
        size = 13 if level == 2 else 10.5
        if self.pdf.will_page_break(size * 0.5 + keep_with_mm):
            self.pdf.add_page()
        self.pdf.ln(3 if level == 2 else 1.5)
        self.text(title, size, "B", gap=0.5)
        if level == 2:
            y = self.pdf.get_y()
            self.pdf.set_draw_color(*RULE)
            self.pdf.line(PAGE_MARGIN_MM, y, PAGE_MARGIN_MM + self.width, y)
            self.pdf.ln(1.5)

    def headline(self, head: Headline) -> None:
        """The figures as cards, three to a row, each edged in its quantity's palette colour."""
        pdf, per_row, gap, height = self.pdf, 3, 3.0, 19.0
        card_w = (self.width - gap * (per_row - 1)) / per_row
        top = pdf.get_y()
        for i, f in enumerate(head.figures):
            x = PAGE_MARGIN_MM + (i % per_row) * (card_w + gap)
            y = top + (i // per_row) * (height + gap)
            pdf.set_draw_color(*RULE)
            pdf.rect(x, y, card_w, height)
            pdf.set_fill_color(*_rgb(colour(f.colour_key)))
            pdf.rect(x, y, 1.6, height, style="F")
            pdf.set_xy(x + 3.5, y + 1.5)
            pdf.set_font(FONT, "", SMALL_PT)
            pdf.set_text_color(*MUTED)
            pdf.cell(card_w - 5, 4, f.label.words)
            pdf.set_xy(x + 3.5, y + 6)
            pdf.set_font(FONT, "B", 14)
            pdf.set_text_color(*INK)
            value = value_text(f)
            pdf.cell(pdf.get_string_width(value) + 1, 7, value)
            pdf.set_font(FONT, "", SMALL_PT)
            pdf.set_text_color(*MUTED)
            pdf.cell(card_w - 5 - pdf.get_string_width(value), 7, f.label.unit)
            pdf.set_xy(x + 3.5, y + 13.5)
            pdf.set_font(FONT, "", 7)
            pdf.cell(card_w - 5, 4, change_text(f, head))
        rows = -(-len(head.figures) // per_row)
        pdf.set_xy(PAGE_MARGIN_MM, top + rows * (height + gap))
        self.text(TOTALS_NOTE, SMALL_PT, colour_rgb=MUTED)

    def _widths(self, g: Grid) -> list[float]:
        """Column widths (mm): each as wide as its longest cell where the page allows. Otherwise numbers keep
        theirs and the text columns share the rest evenly (water-filling: a column that needs less than
        its share keeps what it needs, the others wrap), none narrower than its header's longest word."""
        pdf = self.pdf
        natural, floor = [], []
        for i, h in enumerate(g.headers):
            pdf.set_font(FONT, "B", TABLE_PT)
            head = max(pdf.get_string_width(w) for w in ([h.words] if len(h.words) < 18 else _halves(h.words)))
            head = max(head, pdf.get_string_width(h.unit))
            head_word = max(pdf.get_string_width(w) for w in [*h.words.split(), h.unit])
            pdf.set_font(FONT, "B" if g.bold else "", TABLE_PT)
            cells = max((pdf.get_string_width(r[i]) for r in g.rows), default=0.0)
            pad = 2 * CELL_PADDING_MM + 0.5
            natural.append(max(head, cells) + pad)
            floor.append(head_word + pad)
        if sum(natural) <= self.width:
            return natural
        text = [i for i, n in enumerate(g.numeric) if not n]
        room = self.width - sum(w for w, n in zip(natural, g.numeric, strict=True) if n)
        if not text or room <= sum(floor[i] for i in text):
            return [w * self.width / sum(natural) for w in natural]
        low, high = 0.0, room
        for _ in range(40):  # the level c at which the text columns, each min(natural, max(floor, c)), fill the room
            c = (low + high) / 2
            if sum(min(natural[i], max(floor[i], c)) for i in text) > room:
                high = c
            else:
                low = c
        return [w if g.numeric[i] else min(w, max(floor[i], low)) for i, w in enumerate(natural)]

    def table(self, g: Grid) -> None:
        pdf = self.pdf
        widths = self._widths(g)
        pdf.set_font(FONT, "", TABLE_PT)
        pdf.set_text_color(*INK)
        pdf.set_draw_color(*RULE)
        pdf.set_fill_color(255, 255, 255)  # the headline's last card colour must not fill the cells
        from fpdf.fonts import FontFace  # lazy: optional dependency (report extra), as _fpdf

        with pdf.table(width=min(sum(widths), pdf.epw), col_widths=widths, align="LEFT",
                       borders_layout="HORIZONTAL_LINES",
                       headings_style=FontFace(emphasis="BOLD", fill_color=HEAD_FILL), line_height=TABLE_PT * 0.48,
                       padding=CELL_PADDING_MM, v_align="TOP") as table:
            row = table.row()
            for h, n in zip(g.headers, g.numeric, strict=True):
                row.cell(f"{h.words}\n{h.unit}" if h.unit else h.words, align="RIGHT" if n else "LEFT")
            total = FontFace(emphasis="BOLD")
            for i, cells in enumerate(g.rows):
                row = table.row(style=total if g.is_bold(i) else None)
                for c, n in zip(cells, g.numeric, strict=True):
                    row.cell(c, align="RIGHT" if n else "LEFT")
        pdf.ln(2.5)

    def image_size(self, path: Path) -> tuple[float, float]:
        """(width, height) in mm a chart is drawn at: 80 % of its drawn size, at most the content width."""
        from PIL import Image  # lazy: optional dependency (Pillow comes with matplotlib, the report extra)

        with Image.open(path) as im:
            w_px, h_px = im.size
        w = min(self.width, w_px / DPI * MM_PER_INCH * 0.8)
        return w, w * h_px / w_px

    def image(self, path: Path) -> None:
        w, h = self.image_size(path)
        if self.pdf.will_page_break(h):
            self.pdf.add_page()
        x = PAGE_MARGIN_MM + (self.width - w) / 2
        self.pdf.image(str(path), x=x, w=w, h=h)
        self.pdf.ln(3)

    def section(self, s: Section, out: Path) -> None:
        # a section of charts only keeps its title and note with its first chart
        first_chart = self.image_size(out / s.charts[0].name)[1] + 15 if s.charts and s.cols is None else 25.0
        self.heading(s.title, s.level, keep_with_mm=first_chart)
        if s.is_empty:
            self.text(s.empty, style="I", colour_rgb=MUTED)
            return
        if s.note:
            self.text(s.note)
        if s.cols is not None:
            for part in fit(grid(s.cols, s.rows), record=s.record):
                self.table(part)
        for n in s.notes:
            self.text(f"- {n}", SMALL_PT)
        for c in s.charts:
            self.image(out / c.name)


def _halves(words: str) -> list[str]:
    """A long header as the two lines it wraps to (split at the space nearest the middle)."""
    spaces = [i for i, ch in enumerate(words) if ch == " "]
    if not spaces:
        return [words]
    mid = min(spaces, key=lambda i: abs(i - len(words) / 2))
    return [words[:mid], words[mid + 1:]]


def write_pdf(month: str, head: Headline, sections: Sequence[Section], out: Path) -> Path:
    """report.pdf in ``out`` (the charts must be there already)."""
    doc = ReportPdf(month)
    doc.text(f"wattfleet monthly report: {month}", 18, "B", gap=1)
    doc.text(f"Fleet energy, emissions, water and carbon-free energy for {month} (UTC), from the aggregator's "
             "facts.", colour_rgb=MUTED, gap=3)
    doc.headline(head)
    for s in sections:
        doc.section(s, out)
    path = out / "report.pdf"
    # fontTools logs every step of subsetting the embedded font at INFO, which the CLI's logging would print
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    doc.pdf.output(str(path))
    return path
