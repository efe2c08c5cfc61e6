"""The README's screenshots of the demo's monthly report, made from the real files, never by hand.

    python docs/screenshots.py                     # runs `wattfleet demo` (about a minute), then shoots
    python docs/screenshots.py --report out/report # shoots an existing report folder

Writes docs/img/report-headline.png (report.html at 1280 px: title, headline, GHG summary),
docs/img/report-cfe.png (the carbon-free energy section with its heatmap) and
docs/img/report-pdf-page1.png (report.pdf's first page). Needs Debian's `chromium` (the same
headless browser and DevTools-pipe client as the report's browser tests, tests/chromium.py) and
pypdfium2 (test extra). Images are reduced to 256 colours to keep the repository small.
"""

from __future__ import annotations

import argparse
import base64
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from chromium import Chromium  # noqa: E402 - tests/ is put on the path just above

WIDTH = 1280


def shoot(browser: Chromium, selector_from: str, selector_to: str | None, path: Path) -> None:
    """From the top of ``selector_from`` to the bottom of ``selector_to`` (or of the first), full width."""
    top = browser.evaluate(f"document.querySelector({selector_from!r}).getBoundingClientRect().top + scrollY")
    last = selector_to or selector_from
    bottom = browser.evaluate(f"document.querySelector({last!r}).getBoundingClientRect().bottom + scrollY")
    shot = browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": max(0, top - 16), "width": WIDTH, "height": bottom - top + 32, "scale": 1})
    path.write_bytes(base64.b64decode(shot["data"]))
    small(path)


def small(path: Path) -> None:
    with Image.open(path) as im:
        im.convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


def pdf_page(pdf: Path, path: Path, dpi: int = 80) -> None:
    import pypdfium2 as pdfium  # test extra: imported only here

    doc = pdfium.PdfDocument(pdf)
    try:
        doc[0].render(scale=dpi / 72).to_pil().save(path)
    finally:
        doc.close()
    small(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--report", type=Path, help="an existing report folder (default: run the demo)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wattfleet-shots-") as tmp:
        report = args.report
        if report is None:
            subprocess.run([sys.executable, "-m", "wattfleet", "demo", "--out", tmp, "--no-progress"], check=True)
            report = Path(tmp) / "report"
        with Chromium(timeout_s=60) as browser:
            browser.open(report / "report.html", WIDTH, height=900)
            shoot(browser, "h1", "#s-ghg-summary", args.out / "report-headline.png")
            shoot(browser, "#s-cfe", None, args.out / "report-cfe.png")
        pdf_page(report / "report.pdf", args.out / "report-pdf-page1.png")
    for name in ("report-headline.png", "report-cfe.png", "report-pdf-page1.png"):
        print(args.out / name, (args.out / name).stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
