"""Fault tests against real servers: a real SIGKILL mid-window, Prometheus dying mid-run.

Totals after recovery must equal the hand-computed ones of test_agg_e2e,
and no hour may ever be half-written.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from fixtures.agg.e2e import H0, HOURS, check_totals, config_text, history, run
from paths import FIXTURES
from promserver import PROMTOOL, PrometheusServer, have_prometheus
from shared_data import needs_ciso
from wattfleet.aggregator.ingest.run import get_watermark
from wattfleet.aggregator.ingest.telemetry import TelemetrySourceError
from wattfleet.aggregator.store.database import open_store
from wattfleet.aggregator.store.rows import one_row
from wattfleet.core import catalog

pytestmark = [needs_ciso, pytest.mark.prometheus,
              pytest.mark.skipif(not have_prometheus(), reason="prometheus/promtool not installed")]

KILLER = FIXTURES / "agg" / "kill_mid_window.py"
h0 = H0.replace(tzinfo=None)


def window_state(con, hour):
    return (one_row(con, "SELECT count(*), sum(joules) FROM stg_energy_hourly WHERE hour_utc = ?", [hour]),
            one_row(con, "SELECT count(*) FROM ingest_window WHERE hour_utc = ?", [hour])[0])


def kill_run(db, cfg_path, url, kill_hour):
    proc = subprocess.run([sys.executable, str(KILLER), str(db), str(cfg_path), url, h0.isoformat(),
                           (h0 + timedelta(hours=HOURS)).isoformat(), kill_hour.isoformat()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stdout + proc.stderr  # really SIGKILLed
    assert "dying" in proc.stdout


def test_sigkill_mid_window_then_resume(prom, tmp_path):
    cfg_path = tmp_path / "facility.yaml"
    cfg_path.write_text(config_text())
    db = tmp_path / "wf.duckdb"
    kill_hour = h0 + timedelta(hours=2)
    kill_run(db, cfg_path, prom.url, kill_hour)
    con = open_store(db)  # replays the WAL: only committed windows survive
    assert window_state(con, kill_hour) == ((0, None), 0)  # nothing of the killed window
    assert window_state(con, h0 + timedelta(hours=1))[1] == 1
    assert get_watermark(con, "prometheus") == kill_hour
    assert one_row(con, "SELECT count(*) FROM dirty_month")[0] == 1  # facts not yet rebuilt
    con.close()
    # A rerun over hours that are already complete, killed mid-window: the old window stays whole.
    con = open_store(db)
    from wattfleet.aggregator.config.load import load_facility
    config = load_facility(cfg_path)
    run(con, config, prom.url)
    check_totals(con)
    complete = window_state(con, kill_hour)
    con.close()
    kill_run(db, cfg_path, prom.url, kill_hour)
    con = open_store(db)
    assert window_state(con, kill_hour) == complete
    # Resume from the watermark (no --from): totals are the hand-computed ones.
    run(con, config, prom.url, start=None, end=h0 + timedelta(hours=HOURS), lookback_hours=HOURS)
    check_totals(con)
    assert one_row(con, "SELECT count(*) FROM dirty_month")[0] == 0


def test_prometheus_dies_mid_run_then_resume(cfg, tmp_path):  # noqa: F811
    server = PrometheusServer(targets=[])
    history().write_blocks(PROMTOOL, server.dir / "data")
    con = open_store(tmp_path / "wf.duckdb")
    try:
        server.start()
        server.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=3, timeout=30)

        def stop_after_first(hour):
            if hour == h0:
                server.stop()

        with pytest.raises(TelemetrySourceError, match="no usable answer"):
            run(con, cfg, server.url, page_hours=1, retries=1, on_window=stop_after_first)
        assert get_watermark(con, "prometheus") == h0 + timedelta(hours=1)
        assert one_row(con, "SELECT count(*) FROM ingest_window")[0] == 1
        server.start()  # back, same data and port
        server.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=3, timeout=30)
        result = run(con, cfg, server.url, start=None, end=h0 + timedelta(hours=HOURS), lookback_hours=0)
        assert result.start == h0 + timedelta(hours=1) and result.windows == HOURS - 1
        check_totals(con)
    finally:
        server.close()
