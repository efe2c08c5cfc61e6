"""Implausible grid intensities are refused with file, line and field; the bound is the grid spec's to move."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

import paths
from wattfleet.aggregator.grid import GridDataError, load_intensity

FIXTURE = paths.FIXTURES / "grid" / "eia930_CISO_2022-01-04_05.csv"
T0, T1 = datetime(2022, 1, 4, tzinfo=timezone.utc), datetime(2022, 1, 5, tzinfo=timezone.utc)


def with_value(tmp_path: Path, line: int, value: str) -> Path:
    lines = FIXTURE.read_text().splitlines()
    cells = lines[line - 1].split(",")
    cells[-1] = value
    lines[line - 1] = ",".join(cells)
    path = tmp_path / "CISO.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_billion_grams_per_kwh_is_refused_naming_file_line_and_field(tmp_path: Path) -> None:
    path = with_value(tmp_path, 5, "1e9")
    with pytest.raises(GridDataError) as err:
        load_intensity({"source": "eia930", "path": str(path)}, T0, T1)
    message = str(err.value)
    assert f"{path}:5" in message and "avg_CI" in message and "above the plausible maximum 2000" in message


def test_the_bound_is_configurable_per_grid_spec(tmp_path: Path) -> None:
    path = with_value(tmp_path, 5, "2500")
    spec = {"source": "eia930", "path": str(path)}
    with pytest.raises(GridDataError, match="2500 g/kWh is above the plausible maximum 2000"):
        load_intensity(spec, T0, T1)
    load = load_intensity({**spec, "max_grams_per_kwh": 3000}, T0, T1)
    assert max(r.grams_per_kwh + (r.upstream_grams_per_kwh or 0) for r in load.rows) == pytest.approx(2500)
    first_row = r"CISO\.csv:2: field 'avg_CI': intensity 278.167 g/kWh is above the plausible maximum 250"
    with pytest.raises(GridDataError, match=first_row):
        load_intensity({**spec, "max_grams_per_kwh": 250}, T0, T1)
