"""Real data shipped with wattfleet, so the demo runs the same from a plain clone or a wheel.

* ``grid-eia930-2022/<ZONE>.csv.gz``: hourly 2022 grid carbon intensity of seven US balancing
  authorities, derived from U.S. EIA-930 (public domain), as published in the MIT-licensed
  HewlettPackard/dc-rl repository (``data/CarbonIntensity``). Byte-identical to the CSV files,
  gzip-compressed.
* ``workload-traces/alibaba-cpu-hourly-excerpt.csv.gz``: 792 hours (rows 6529-7320, October of
  a non-leap year with a day either side) of the hourly Alibaba cluster CPU load trace from the
  same repository (``data/Workload/Alibaba_CPU_Data_Hourly_1.csv``).

See README.md in this folder for sources and licenses. The grid loaders read plain CSV paths,
so :func:`extract_grid` writes the files out where a facility config can name them.
"""

from __future__ import annotations

import gzip
import shutil
from importlib import resources
from pathlib import Path

GRID_DIR_NAME = "grid-eia930-2022"
GRID_SOURCE = ("U.S. EIA-930 hourly generation by fuel (public domain), 2022, as published in "
               "HewlettPackard/dc-rl data/CarbonIntensity (MIT)")
TRACE_NAME = "alibaba-cpu-hourly-excerpt.csv.gz"
# Position of the excerpt's first row in the full trace (0-based; its ``index`` column says 6529).
TRACE_FIRST_HOUR = 6528
TRACE_SOURCE = ("Alibaba cluster hourly CPU load, rows 6529-7320, from HewlettPackard/dc-rl "
                "data/Workload/Alibaba_CPU_Data_Hourly_1.csv (MIT)")


def _root() -> Path:
    return Path(str(resources.files(__name__)))


def grid_zones() -> list[str]:
    """The zones whose 2022 EIA-930 hourly file ships with the package."""
    return sorted(p.name.removesuffix(".csv.gz") for p in (_root() / GRID_DIR_NAME).glob("*.csv.gz"))


def extract_grid(dest: Path) -> Path:
    """Decompress the shipped EIA-930 files into ``dest`` (skipping files already there, unchanged)."""
    dest.mkdir(parents=True, exist_ok=True)
    for src in sorted((_root() / GRID_DIR_NAME).glob("*.csv.gz")):
        target = dest / src.name.removesuffix(".gz")
        if target.is_file() and target.stat().st_mtime >= src.stat().st_mtime:
            continue
        tmp = target.with_suffix(".tmp")
        with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        tmp.replace(target)
    return dest


def trace_excerpt() -> tuple[list[str], list[str]]:
    """The shipped workload excerpt: (header line, data lines), each without its newline."""
    lines = gzip.decompress((_root() / "workload-traces" / TRACE_NAME).read_bytes()).decode().splitlines()
    return lines[:1], [line for line in lines[1:] if line.strip()]
