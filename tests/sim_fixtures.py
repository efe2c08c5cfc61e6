"""A small simulated fleet and readers of its exposition, shared by the tests of ``wattfleet.sim``."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from wattfleet.sim.config import FleetConfig

JAN1_2022 = 1640995200.0


def fleet_config(tmp_path: Path, **kw: object) -> FleetConfig:
    """Three nodes of two GPUs, 10 simulated seconds a tick from 2022-01-01, in ``tmp_path``; ``kw`` overrides."""
    base: dict[str, object] = dict(nodes=3, gpus_per_node=2, interval=1.0, acceleration=10.0, start=JAN1_2022,
                                   workdir=tmp_path / "sim")
    base.update(kw)
    return FleetConfig(**base)  # type: ignore[arg-type]


def series_values(body: bytes, series: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of ``series`` in an exposition body, with its labels."""
    out = []
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == series:
                out.append((s.labels, s.value))
    return out


def one_value(body: bytes, series: str, **labels: str) -> float:
    """The single sample of ``series`` with these labels (asserts there is exactly one)."""
    hits = [v for lab, v in series_values(body, series) if all(lab.get(k) == v2 for k, v2 in labels.items())]
    assert len(hits) == 1, (series, labels, hits)
    return hits[0]
