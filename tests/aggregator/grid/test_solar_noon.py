"""Which hour an EIA-930 label names, pinned by the sun (docs/accounting.md 5.1).

Solar generation is symmetric about local solar noon, so over a year the energy-weighted mean time of
a zone's daytime solar output (its centroid) falls near solar noon. Solar noon in UTC is approximated
from a longitude standing for the balancing authority's solar fleet as 12:00 - longitude / 15 h: the
equation of time (within +-16 min) averages out over a year, and the longitude is good to a degree or
two (4 to 8 min). Each hour's energy is placed at its midpoint; output more than 9 h from solar noon
(night) is left out. Read with wattfleet's default for EIA-930 (labels are hour ends, as EIA publishes
them), the centroid of five zones is within 0.5 h of solar noon and none is read as hour starts.

Measured on the 2022 files (centroid minus solar noon, hours; read hour-ending, read hour-start):
AZPS +0.56, +1.40; BPAT +0.11, +1.08; CISO -0.35, +0.65; MISO +0.06, +1.02; SOCO -0.11, +0.89;
WAAT +0.18, +1.14. NYIS reports no solar in these files. AZPS is late either way: its data carry
solar output through every night (about 20 MWh each hour) and a long evening shoulder, so its check
is looser (hour-ending within 0.6 h and about an hour closer than hour-start); the five others pin
the convention with the 0.5 h bound.
"""

from __future__ import annotations

import gzip
from datetime import timedelta
from pathlib import Path

import pytest

from shared_data import EIA_DIR
from wattfleet import data
from wattfleet.aggregator.grid.eia930 import read_eia930
from wattfleet.aggregator.grid.spec import timestamps

# Longitude (degrees east) standing for each balancing authority's solar fleet: the centre of its
# service area or of the part of it where its utility-scale solar sits.
LONGITUDE = {
    "AZPS": -112.1,  # Arizona Public Service: Phoenix and the plants west of it
    "BPAT": -120.5,  # Bonneville: Oregon and Washington east of the Cascades
    "CISO": -118.5,  # California ISO: Central Valley, Mojave and the southern deserts
    "MISO": -90.0,   # Midcontinent ISO: along the Mississippi, Minnesota to Louisiana
    "SOCO": -85.0,   # Southern Company: Georgia and Alabama
    "WAAT": -120.5,  # the dc-rl file for Washington (its hours match BPAT's within a few MWh)
}
BOUND_HOURS = 0.5
# AZPS: later than the others whichever way it is read (see above); hour-ending still an hour closer.
LOOSE_BOUND_HOURS = {"AZPS": 0.6}
DAYLIGHT_HOURS = 9.0  # longer than half the longest day at these latitudes (about 7.5 h)


def solar_noon_utc_hours(longitude: float) -> float:
    """Mean solar noon in hours UTC (the equation of time left out)."""
    return 12.0 - longitude / 15.0


def solar_centroid_offset_hours(path: Path, zone: str, timestamps: str) -> float:
    """Energy-weighted mean of (hour midpoint - solar noon) over the year's solar generation, in hours."""
    noon = solar_noon_utc_hours(LONGITUDE[zone])
    sun = _solar_mwh_by_line(path)
    parsed = read_eia930(path, zone, timestamps=timestamps)
    lines = _row_lines(path, parsed)
    weighted = total = 0.0
    for row, line in zip(parsed.rows, lines, strict=True):
        mwh = sun.get(line, 0.0)
        if mwh <= 0:
            continue
        mid = row.hour_utc + timedelta(minutes=30)
        offset = (mid.hour + mid.minute / 60 - noon + 12) % 24 - 12  # in [-12, 12)
        if abs(offset) > DAYLIGHT_HOURS:
            continue  # night: no sun to time (AZPS reports some output every night)
        weighted += mwh * offset
        total += mwh
    assert total > 0, f"{zone}: no solar generation"
    return weighted / total


def _solar_mwh_by_line(path: Path) -> dict[int, float]:
    """SUN column by file line (the loader keeps the mix only for its checks)."""
    text = path.read_text().splitlines()
    header = [h.strip() for h in text[0].split(",")]
    i_sun = header.index("SUN")
    out: dict[int, float] = {}
    for n, line in enumerate(text[1:], start=2):
        cells = line.split(",")
        if len(cells) == len(header) and cells[i_sun].strip():
            out[n] = float(cells[i_sun])
    return out


def _row_lines(path: Path, parsed) -> list[int]:
    """The file line of each parsed row (rows are sorted by hour, as the file is)."""
    text = path.read_text().splitlines()
    lines = [n for n, line in enumerate(text[1:], start=2) if line.split(",")[-1].strip()]
    assert len(lines) == len(parsed.rows)
    return lines


def _shipped(zone: str, tmp_path: Path) -> Path:
    out = tmp_path / f"{zone}.csv"
    with gzip.open(Path(str(data._root())) / data.GRID_DIR_NAME / f"{zone}.csv.gz", "rb") as fh:
        out.write_bytes(fh.read())
    return out


@pytest.mark.parametrize("zone", sorted(LONGITUDE))
def test_hour_ending_puts_the_solar_centroid_at_solar_noon_in_shipped_files(zone: str, tmp_path: Path) -> None:
    """Pins wattfleet's reading of EIA-930 labels (hour-ending, the loader's default) on the files the
    package ships: the solar centroid is within 0.5 h of solar noon that way and not the other."""
    path = _shipped(zone, tmp_path)
    ending = solar_centroid_offset_hours(path, zone, "hour_ending")
    starting = solar_centroid_offset_hours(path, zone, "hour_start")
    assert 0.8 < starting - ending < 1.2, (zone, ending, starting)  # one hour apart, less night cut-off edges
    bound = LOOSE_BOUND_HOURS.get(zone, BOUND_HOURS)
    assert abs(ending) <= bound, f"{zone}: hour-ending centroid {ending:+.2f} h from solar noon"
    assert abs(starting) > bound, f"{zone}: hour-start centroid {starting:+.2f} h from solar noon"


@pytest.mark.skipif(not (EIA_DIR / "CISO.csv").exists(), reason=f"shared EIA-930 data not found at {EIA_DIR}")
@pytest.mark.parametrize("zone", sorted(LONGITUDE))
def test_shared_files_are_the_shipped_ones(zone: str, tmp_path: Path) -> None:
    """The check above holds for the shared files too: they are the same bytes."""
    assert _shipped(zone, tmp_path).read_bytes() == (EIA_DIR / f"{zone}.csv").read_bytes()


def test_eia930_default_reading_is_hour_ending() -> None:
    assert timestamps({"source": "eia930", "path": "x.csv"}) == "hour_ending"
    assert timestamps({"source": "eia930", "path": "x.csv", "timestamps": "hour_start"}) == "hour_start"
    assert timestamps({"source": "electricitymaps", "zone": "DE"}) == "hour_start"
