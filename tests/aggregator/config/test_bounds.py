"""A PUE that no building has is refused with file, line and field; ``defaults.max_pue`` moves the bound."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from wattfleet.aggregator.config.checker import FacilityConfigError
from wattfleet.aggregator.config.load import load_facility


def config(tmp_path: Path, pue: str, defaults: str = "") -> Path:
    path = tmp_path / "facility.yaml"
    path.write_text(textwrap.dedent(f"""\
        version: 1
        {defaults}
        sites:
          - name: s1
            zone: ZA
            grid: {{source: static, grams_per_kwh: 300}}
            pue: {pue}
            wue_liters_per_kwh: 1.0
            nodes: ["a-*"]
        """))
    return path


def problems(path: Path) -> str:
    with pytest.raises(FacilityConfigError) as err:
        load_facility(path)
    return str(err.value)


def test_a_pue_of_a_million_is_refused(tmp_path: Path) -> None:
    message = problems(config(tmp_path, "1000000.0"))
    assert "facility.yaml:7" in message and "sites[0].pue" in message and "above the plausible maximum 3" in message


def test_defaults_max_pue_widens_the_bound(tmp_path: Path) -> None:
    assert load_facility(config(tmp_path, "3.5", "defaults: {max_pue: 4}")).sites["s1"].pue == 3.5
    assert "above the plausible maximum 3" in problems(config(tmp_path, "3.5"))


def test_a_meter_reading_implying_an_impossible_pue_is_refused(tmp_path: Path) -> None:
    pue = "{default: 1.2, meter: [{month: 2026-10, total_kwh: 500, it_kwh: 100}]}"
    message = problems(config(tmp_path, pue))
    assert "PUE 5 (total 500 / IT 100 kWh) is above the plausible maximum 3" in message
