"""Grid intensity basis (docs/accounting.md 5.5): the spec's ``basis``, the split of EIA-930's life-cycle
``avg_CI`` into direct and upstream parts by the hour's mix, and the fill rules carrying the split.

The files are the ones wattfleet ships (wattfleet/data, gzip; the same bytes as ../shared/data/grid-eia930-2022,
tests/aggregator/grid/test_solar_noon.py checks): EIA-930 via HewlettPackard/dc-rl, data/CarbonIntensity. The
hand-computed hours below quote their lines.
"""

from __future__ import annotations

import csv
import gzip
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from wattfleet import data
from wattfleet.aggregator.grid import GridDataError, load_intensity, read_eia930
from wattfleet.aggregator.grid.basis import DIRECT_G_PER_KWH, LIFECYCLE_G_PER_KWH, split_lifecycle
from wattfleet.aggregator.grid.eia930 import FUEL_COLUMNS
from wattfleet.aggregator.grid.spec import basis

ZONES = ("AZPS", "BPAT", "CISO", "MISO", "NYIS", "SOCO", "WAAT")


@pytest.fixture(scope="module")
def eia_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped files, decompressed."""
    out = tmp_path_factory.mktemp("eia930")
    for zone in ZONES:
        with gzip.open(Path(str(data._root())) / data.GRID_DIR_NAME / f"{zone}.csv.gz", "rb") as src, \
                open(out / f"{zone}.csv", "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out
UTC = timezone.utc
HEADER = "timestamp,WND,SUN,WAT,OIL,NG,COL,NUC,OTH,avg_CI\n"


def _hour(label: str) -> datetime:
    """The start of the hour an EIA (hour-ending) label names."""
    return datetime.fromisoformat(label).astimezone(UTC) - timedelta(hours=1)


@pytest.mark.parametrize(("zone", "label", "direct", "avg_ci"), [
    # MISO.csv line 2000: WND 10995, WAT 1303, NG 16388, COL 21188, NUC 10111, OTH 474 MWh (60,459 in all)
    ("MISO", "2022-03-25 06:00:00+00:00", (16388 * 370 + 21188 * 760) / 60459, 426.5179543161481),
    # BPAT.csv line 5000: WND 326, WAT 9685, NG 992, NUC 1119, OTH 208 MWh (12,330)
    ("BPAT", "2022-07-28 06:00:00+00:00", 992 * 370 / 12330, 63.53398215733982),
    # NYIS.csv line 4000: WND 700, WAT 3229, OIL 596, NG 8706, NUC 3218, OTH 209 MWh (16,658)
    ("NYIS", "2022-06-16 14:00:00+00:00", (596 * 406 + 8706 * 370) / 16658, 289.6639452515308),
])
def test_direct_intensity_is_recomputed_from_the_mix_by_hand(eia_dir: Path, zone: str, label: str, direct: float,
                                                            avg_ci: float) -> None:
    row = {r.hour_utc: r for r in read_eia930(eia_dir / f"{zone}.csv").rows}[_hour(label)]
    assert row.basis == "direct"
    assert row.grams_per_kwh == pytest.approx(direct, rel=1e-12)
    assert row.upstream_grams_per_kwh == pytest.approx(avg_ci - direct, rel=1e-12)


def test_no_double_counting_on_every_shipped_hour(eia_dir: Path) -> None:
    """Scope 2's direct part + Category 3's upstream part = the file's life-cycle avg_CI, every hour of every
    file; and the direct part is the mix's direct factor (avg_CI is exactly the mix's life-cycle factor)."""
    hours = 0
    for path in sorted(eia_dir.glob("*.csv")):
        by_hour = {r.hour_utc: r for r in read_eia930(path).rows}
        with open(path, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            header[0] = header[0] or "timestamp"
            for rec in reader:
                d = dict(zip(header, rec, strict=True))
                if not d["avg_CI"].strip():
                    continue
                r = by_hour[_hour(d["timestamp"])]
                assert r.upstream_grams_per_kwh is not None
                mwh = {f: max(0.0, float(d[f] or 0)) for f in FUEL_COLUMNS}
                total = sum(mwh.values())
                assert r.grams_per_kwh + r.upstream_grams_per_kwh == pytest.approx(float(d["avg_CI"]), rel=1e-12)
                assert r.grams_per_kwh == pytest.approx(sum(mwh[f] * DIRECT_G_PER_KWH[f] for f in mwh) / total,
                                                        rel=1e-9, abs=1e-9)
                assert 0.0 <= r.upstream_grams_per_kwh <= float(d["avg_CI"])
                hours += 1
    assert hours == 61_314  # 8,760 x 5 + 8,757 x 2 (CISO and MISO have three empty hours each)


def test_every_direct_factor_is_below_its_lifecycle_factor() -> None:
    assert set(DIRECT_G_PER_KWH) == set(LIFECYCLE_G_PER_KWH) == set(FUEL_COLUMNS)
    assert all(0 <= DIRECT_G_PER_KWH[f] <= LIFECYCLE_G_PER_KWH[f] for f in FUEL_COLUMNS)


def test_split_keeps_the_sum_when_intensity_and_mix_disagree() -> None:
    # all gas: D/L = 370/490; a reported 245 g/kWh (half the mix's life-cycle figure) is split in that ratio
    split = split_lifecycle(FUEL_COLUMNS, [0, 0, 0, 0, 100, 0, 0, 0], 245.0)
    assert split is not None
    direct, upstream = split
    assert direct == pytest.approx(245 * 370 / 490) and direct + upstream == pytest.approx(245.0)
    assert split_lifecycle(FUEL_COLUMNS, [0, 0, 0, 0, 0, 0, 0, -5], 100.0) is None  # no generation: no split


def _file(tmp_path: Path, rows: list[str]) -> Path:
    p = tmp_path / "ZONE.csv"
    p.write_text(HEADER + "".join(r + "\n" for r in rows))
    return p


def test_basis_direct_keeps_the_file_value_whole(tmp_path: Path) -> None:
    p = _file(tmp_path, ["2022-01-01 01:00:00+00:00,0,0,0,0,100,0,0,0,490"])
    lifecycle = read_eia930(p).rows[0]
    assert (lifecycle.grams_per_kwh, lifecycle.upstream_grams_per_kwh, lifecycle.basis) == (370.0, 120.0, "direct")
    kept = read_eia930(p, basis="direct").rows[0]
    assert (kept.grams_per_kwh, kept.upstream_grams_per_kwh, kept.basis) == (490.0, None, "direct")


T0 = datetime(2022, 1, 1, tzinfo=UTC)


def test_fills_carry_the_split_or_say_lifecycle(tmp_path: Path) -> None:
    # hours 0 and 3 observed (all gas, 490 and all coal, 820); 1 and 2 missing
    p = _file(tmp_path, ["2022-01-01 01:00:00+00:00,0,0,0,0,100,0,0,0,490",
                         "2022-01-01 04:00:00+00:00,0,0,0,0,0,100,0,0,820"])
    rows = load_intensity({"source": "eia930", "path": str(p), "fill": ["linear"]}, T0, T0 + timedelta(hours=4)).rows
    assert [r.basis for r in rows] == ["direct"] * 4
    # linear between (370 | 120) and (760 | 60): one third of the way at hour 1
    assert rows[1].grams_per_kwh == pytest.approx(370 + (760 - 370) / 3)
    assert rows[1].upstream_grams_per_kwh == pytest.approx(120 + (60 - 120) / 3)
    static = load_intensity({"source": "eia930", "path": str(p), "zone": "CISO", "fill": ["static_annual"]},
                            T0, T0 + timedelta(hours=4)).rows
    # the annual table's CISO mean is a mean of avg_CI: life-cycle, not split
    assert (static[1].grams_per_kwh, static[1].basis, static[1].upstream_grams_per_kwh) == (256.19, "lifecycle", None)


def test_each_source_defaults_to_its_documented_basis() -> None:
    assert basis({"source": "eia930"}) == "lifecycle"
    assert basis({"source": "watttime"}) == "direct"
    assert basis({"source": "ukcarbon"}) == "direct"
    assert basis({"source": "static"}) == "direct"
    assert basis({"source": "electricitymaps"}) == "direct"  # wattfleet asks for direct factors
    assert basis({"source": "electricitymaps", "emission_factor": "lifecycle"}) == "lifecycle"
    assert basis({"source": "eia930", "basis": "direct"}) == "direct"


def test_a_wrong_basis_is_an_error_naming_the_key() -> None:
    with pytest.raises(GridDataError, match=r"field 'basis': must be one of \['direct', 'lifecycle'\]"):
        basis({"source": "eia930", "basis": "combustion"})
    with pytest.raises(GridDataError, match="field 'basis': is 'lifecycle' but emission_factor requests 'direct'"):
        basis({"source": "electricitymaps", "basis": "lifecycle", "emission_factor": "direct"})


def test_static_rows_say_the_tables_basis(tmp_path: Path) -> None:
    end = T0 + timedelta(hours=2)
    assert {r.basis for r in load_intensity({"source": "static", "zone": "CISO"}, T0, end).rows} == {"lifecycle"}
    assert {r.basis for r in load_intensity({"source": "static", "zone": "FR"}, T0, end).rows} == {"direct"}
    assert {r.basis for r in load_intensity({"source": "static", "zone": "CISO", "basis": "direct"}, T0,
                                            end).rows} == {"direct"}
