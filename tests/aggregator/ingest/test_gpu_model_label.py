"""GPU series name the board ``gpu_model``; the aggregator still reads the pre-rename ``model`` (README, Upgrading).

Through a real Prometheus: one GPU whose exporter is upgraded in the middle of an hour, so the store holds
the board under ``model`` up to then and under ``gpu_model`` after. Both halves of that hour are counted
(the PromQL groups by both labels instead of collapsing them with ``max``), and the board model survives.
"""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from fixtures.agg.backfill import History, Series, whole_hours_ago
from promserver import PROMTOOL, PrometheusServer, have_prometheus
from wattfleet.aggregator.ingest.prometheus import PrometheusSource, energy_queries
from wattfleet.aggregator.ingest.telemetry import energy_row_from_labels
from wattfleet.core import catalog

BOARD = "NVIDIA H100 80GB HBM3"
GPU = dict(node="n1", cluster="c", site="s", gpu="0", uuid="GPU-x", method="measured", source="nvml")


def test_gpu_series_carry_gpu_model_and_inference_series_keep_model() -> None:
    assert "gpu_model" in catalog.GPU_ENERGY.labels and "model" not in catalog.GPU_ENERGY.labels
    assert "model" in catalog.INFERENCE_TOKENS.labels and "gpu_model" not in catalog.INFERENCE_TOKENS.labels
    assert "gpu_model" in energy_queries()[catalog.GPU_ENERGY.name]


@pytest.mark.parametrize("label", ["gpu_model", "model"])
def test_the_board_is_read_from_either_label(label: str) -> None:
    row = energy_row_from_labels(catalog.GPU_ENERGY, {**GPU, label: BOARD}, whole_hours_ago(1), 5.0, "t")
    assert row is not None and row.gpu_model == BOARD


@pytest.mark.prometheus
@pytest.mark.skipif(not have_prometheus(), reason="prometheus is not installed")
def test_an_hour_spanning_the_upgrade_counts_both_series() -> None:
    h0 = whole_hours_ago(4)
    upgrade = h0 + timedelta(hours=1, minutes=30)
    watts = 300.0
    history = History(h0, 3, [Series(catalog.GPU_ENERGY, {**GPU, "model": BOARD}, watts, until=upgrade),
                              Series(catalog.GPU_ENERGY, {**GPU, "gpu_model": BOARD}, watts, since=upgrade)])
    server = PrometheusServer(targets=[])
    history.write_blocks(PROMTOOL, server.dir / "data")
    with server:
        server.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=2, timeout=30)
        start = h0.astimezone(timezone.utc).replace(tzinfo=None)
        tel = PrometheusSource(server.url, retries=0).fetch(start, start + timedelta(hours=3))
    by_hour: dict[object, float] = {}
    for r in tel.energy:
        assert r.gpu_model == BOARD and r.device == "0"
        by_hour[r.hour_utc] = by_hour.get(r.hour_utc, 0.0) + r.joules
    full = watts * 3600
    # Prometheus' increase() extrapolates each half to the upgrade instant, up to half a scrape interval
    # (30 s of 3600 s here): a max of the two halves would be about half of it.
    assert by_hour[start + timedelta(hours=1)] == pytest.approx(full, rel=0.02)
    assert by_hour[start + timedelta(hours=2)] == pytest.approx(full, rel=0.02)
