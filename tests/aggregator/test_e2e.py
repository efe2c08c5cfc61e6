"""End to end: real Prometheus -> aggregator -> DuckDB, totals checked by hand.

History comes from promtool backfill (exact whole hours of constant power,
one counter reset); live data from the real exporter with fake NVML. Grid
intensity is the real CISO EIA-930 file, replayed from 2022.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from fixtures.agg.e2e import (
    FAC_PER_HOUR,
    GPU,
    H0,
    HOURS,
    OVERHEAD,
    PUE,
    check_totals,
    ciso_2022,
    config_text,
    expected,
    history,
    run,
)
from promserver import PROMTOOL, PrometheusServer, free_port, have_prometheus
from shared_data import needs_ciso
from wattfleet.aggregator.ingest.run import get_watermark, totals, write_window
from wattfleet.aggregator.ingest.telemetry import EnergyRow, Telemetry, TelemetrySourceError
from wattfleet.aggregator.store.database import open_store
from wattfleet.aggregator.store.rows import one_row
from wattfleet.core import catalog

pytestmark = [needs_ciso, pytest.mark.prometheus,
              pytest.mark.skipif(not have_prometheus(), reason="prometheus/promtool not installed")]


def test_end_to_end_totals(prom, cfg, tmp_path):
    con = open_store(tmp_path / "wf.duckdb")
    result = run(con, cfg, prom.url, page_hours=3)  # two pages
    assert result.windows == HOURS
    got = check_totals(con)
    # PUE applied once: facility = IT x PUE exactly, at every level of the rollups.
    assert got["facility_kwh"] == pytest.approx(got["it_kwh"] * PUE)
    roll = dict(con.execute("SELECT dimension || ':' || key, facility_kwh FROM rollup WHERE period = 'month'"
                            ).fetchall())
    assert sum(v for k, v in roll.items() if k.startswith("site:")) == pytest.approx(got["facility_kwh"])
    assert roll["fleet:all"] == pytest.approx(got["facility_kwh"])
    it = dict(con.execute("SELECT dimension || ':' || key, it_kwh FROM rollup WHERE period = 'month'").fetchall())
    assert it["team:ml"] == pytest.approx(0.363 * 230 / 330 * HOURS)  # from workload series only (test_e2e_teams)
    assert it[f"gpu_model:{GPU}"] == pytest.approx(0.75 * HOURS)
    assert it["node:sfo1-n1"] == pytest.approx(0.62 * 1.1 * HOURS)
    # Measured vs estimated: the overhead line is the only estimate.
    est = one_row(con, "SELECT sum(it_kwh_estimated) FROM rollup WHERE period='month' AND dimension='fleet'")[0]
    assert est == pytest.approx(0.95 * OVERHEAD * HOURS)
    # Hourly CFE: PPA 0.25 kWh/h hourly matched + the grid's carbon-free share of the rest.
    cfe = con.execute("SELECT g.cfe_ratio FROM stg_grid_intensity g WHERE zone='CISO' AND hour_utc >= ? "
                      "AND hour_utc < ? ORDER BY hour_utc",
                      [H0.replace(tzinfo=None), (H0 + timedelta(hours=HOURS)).replace(tzinfo=None)]).fetchall()
    want = sum(min(FAC_PER_HOUR, 0.25 + (r or 0) * (FAC_PER_HOUR - 0.25)) for (r,) in cfe)
    assert got["cfe_kwh"] == pytest.approx(want)
    # Inference phases: energy and tokens per model and phase.
    inf = {r[0]: r[1:] for r in con.execute(
        "SELECT phase, sum(it_kwh), sum(tokens), sum(facility_kwh) FROM rollup_inference WHERE period='month' "
        "GROUP BY phase").fetchall()}
    assert inf["prefill"][0] == pytest.approx(0.05 * HOURS) and inf["decode"][0] == pytest.approx(0.15 * HOURS)
    assert inf["prefill"][1] == pytest.approx(20 * 3600 * HOURS) and inf["decode"][1] == pytest.approx(5 * 3600 * HOURS)
    assert inf["decode"][2] == pytest.approx(0.15 * HOURS * PUE)
    # Per-phase figures: 50 W / 20 tok/s = 2.5 J per prefill token; 150 W / 5 tok/s = 30 J per decode token.
    per = {r[0]: r[1:] for r in con.execute(
        "SELECT phase, it_joules_per_token, facility_joules_per_token, scope2_location_g_per_1k_tokens "
        "FROM rollup_inference_per_token WHERE period = 'month'").fetchall()}
    assert per["prefill"][0] == pytest.approx(2.5) and per["decode"][0] == pytest.approx(30.0)
    assert per["decode"][1] == pytest.approx(30.0 * PUE)
    decode_g = sum(0.15 * PUE * ciso_2022(H0 + timedelta(hours=h)) for h in range(HOURS))
    assert per["decode"][2] == pytest.approx(decode_g / (5 * 3600 * HOURS / 1000))
    # Data quality: every hour had intensity; no unmapped nodes.
    flags = one_row(con, "SELECT count(*) FILTER (WHERE intensity_missing OR site_unmapped) "
                         "FROM fact_device_hour")[0]
    assert flags == 0
    # Scope 2 on the direct part of EIA-930's life-cycle intensity, every row (docs/accounting.md 5.5)
    assert con.execute("SELECT DISTINCT intensity_basis FROM fact_device_hour").fetchall() == [("direct",)]
    assert get_watermark(con, "prometheus") == (H0 + timedelta(hours=HOURS)).replace(tzinfo=None)


def test_duplicate_runs_give_identical_totals(prom, cfg, tmp_path):
    con = open_store(tmp_path / "wf.duckdb")
    run(con, cfg, prom.url)
    first = totals(con)
    run(con, cfg, prom.url)
    run(con, cfg, prom.url, start=H0 + timedelta(hours=1), end=H0 + timedelta(hours=3))  # partial re-run
    assert totals(con) == first
    n = one_row(con, "SELECT count(*) FROM stg_energy_hourly")[0]
    assert n == HOURS * 6  # 3 GPUs + package and dram on n1 + package on n2, no duplicates


def test_killed_between_windows_then_resumed(prom, cfg, tmp_path):
    con = open_store(tmp_path / "wf.duckdb")

    def die_after_second(hour):
        if hour == H0.replace(tzinfo=None) + timedelta(hours=1):
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):  # a page is the unit of commit: pages of one hour here
        run(con, cfg, prom.url, page_hours=1, on_window=die_after_second)
    assert get_watermark(con, "prometheus") == (H0 + timedelta(hours=2)).replace(tzinfo=None)
    assert one_row(con, "SELECT count(DISTINCT hour_utc) FROM stg_energy_hourly")[0] == 2
    # Resume from the watermark (no --from): only the missing hours plus the lookback.
    result = run(con, cfg, prom.url, start=None, lookback_hours=1)
    assert result.start == (H0 + timedelta(hours=1)).replace(tzinfo=None)
    check_totals(con)


def test_crash_inside_a_window_leaves_it_untouched(prom, cfg, tmp_path):
    con = open_store(tmp_path / "wf.duckdb")
    run(con, cfg, prom.url)
    hour = (H0 + timedelta(hours=1)).replace(tzinfo=None)
    before = one_row(con, "SELECT count(*), sum(joules) FROM stg_energy_hourly WHERE hour_utc = ?", [hour])
    bad = EnergyRow(hour, "sfo1-n1", "c1", "sfo1", "0", "gpu", "gpu", GPU, "measured", 5.0, "prometheus")
    bad_row = EnergyRow(hour, "sfo1-n1", "c1", "sfo1", "1", "gpu", "gpu", GPU, "measured", -1.0,
                        "prometheus")  # violates CHECK after the delete already ran
    with pytest.raises(duckdb.ConstraintException, match="CHECK constraint"):
        write_window(con, "prometheus", hour, Telemetry([hour], [bad, bad_row], []))
    after = one_row(con, "SELECT count(*), sum(joules) FROM stg_energy_hourly WHERE hour_utc = ?", [hour])
    assert after == before


def test_prometheus_down_then_back(cfg, tmp_path):
    server = PrometheusServer(targets=[])
    history().write_blocks(PROMTOOL, server.dir / "data")
    con = open_store(tmp_path / "wf.duckdb")
    try:
        with pytest.raises(TelemetrySourceError, match="no usable answer"):
            run(con, cfg, server.url, retries=1)  # not started yet
        assert get_watermark(con, "prometheus") is None
        assert one_row(con, "SELECT count(*) FROM ingest_window")[0] == 0
        server.start()
        server.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=3, timeout=30)
        run(con, cfg, server.url)
        check_totals(con)
    finally:
        server.close()


def test_live_exporter_scraped_by_prometheus(cfg, tmp_path):
    """The real exporter (fake NVML) scraped by real Prometheus; PromQL from the catalog finds it."""
    from wattfleet.core.http import MetricsServer
    from wattfleet.exporter.sampler import Sampler
    from wattfleet.exporter.sensors.nvml import NvmlSensor
    from wattfleet.sim.fake_nvml import FakeNvml

    fake = FakeNvml.with_gpus(2, watts=300)
    sampler = Sampler([NvmlSensor(fake)], const_labels={"node": "sfo1-live", "cluster": "c1", "site": "sfo1"},
                      interval=0.1)
    port = free_port()
    server = MetricsServer(f"127.0.0.1:{port}", lambda: sampler.snapshot)
    sampler.start()
    server.start()
    try:
        with PrometheusServer(targets=[f"127.0.0.1:{port}"], scrape_interval="200ms") as prom:
            prom.wait_for(catalog.GPU_ENERGY.series, min_results=2, timeout=30)
            time.sleep(3)
            server.stop()  # freeze the series so that raw samples and the ingest see the same data
            sampler.stop()
            time.sleep(0.5)
            raw = prom.query(f'{catalog.GPU_ENERGY.series}{{node="sfo1-live"}}[2h]')
            truth = [float(r["values"][-1][1]) - float(r["values"][0][1])
                     for r in sorted(raw, key=lambda r: r["metric"]["gpu"])]
            now = datetime.now(timezone.utc)
            start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
            con = open_store(tmp_path / "wf.duckdb")
            run(con, cfg, prom.url, start=start, end=start + timedelta(hours=2))
            rows = con.execute("SELECT device, gpu_model, method, sum(joules) FROM stg_energy_hourly "
                               "WHERE node = 'sfo1-live' GROUP BY ALL ORDER BY device").fetchall()
    finally:
        server.stop()
        sampler.stop()
    assert [r[:3] for r in rows] == [("0", GPU, "measured"), ("1", GPU, "measured")]
    for (_, _, _, joules), true_j in zip(rows, truth, strict=True):
        assert true_j > 300  # at least a second of 300 W
        assert joules == pytest.approx(true_j, rel=0.2)  # increase() extrapolates half a scrape interval
    fact = one_row(con, "SELECT sum(facility_kwh) / sum(it_kwh) FROM fact_device_hour WHERE component='gpu'")[0]
    assert fact == pytest.approx(PUE)


def test_cli_aggregate_then_report(prom, tmp_path, capsys):
    from wattfleet.cli import main

    cfg_path = tmp_path / "facility.yaml"
    cfg_path.write_text(config_text())
    db = tmp_path / "wf.duckdb"
    end = H0 + timedelta(hours=HOURS)
    args = ["aggregate", "--config", str(cfg_path), "--db", str(db), "--prometheus", prom.url,
            "--from", H0.isoformat(), "--to", end.isoformat(), "--no-progress"]
    assert main(args) == 0
    assert f"ingested {HOURS} hour(s)" in capsys.readouterr().out
    assert main(args) == 0  # duplicate run
    month = H0.strftime("%Y-%m")
    out = tmp_path / "report"
    assert main(["report", "--month", month, "--db", str(db), "--out", str(out), "--config", str(cfg_path)]) == 0
    for name in ("report.md", "report.html", "energy.png", "scopes.png", "location_vs_market.png",
                 "cfe_by_hour.png", "top_emitters.png", "water.png", "ghg_summary.csv", "ghg_summary.parquet",
                 "inference.parquet", "sites.csv"):
        assert (out / name).stat().st_size > 0, name
    md = (out / "report.md").read_text()
    assert "| Scope 2 | Purchased electricity |" in md and "Location-based (kg CO2e) | Market-based (kg CO2e)" in md
    ghg = {(s, c): (loc, mkt) for s, c, loc, mkt in duckdb.execute(
        f"SELECT scope, category, location_based_kg_co2e, market_based_kg_co2e FROM '{out / 'ghg_summary.parquet'}'"
    ).fetchall()}
    exp = expected()
    assert ghg[("Scope 2", "Purchased electricity")][0] == pytest.approx(exp["scope2_location_g"] / 1e3)
    assert sum(ghg[("Scope 1", c)][0] for c in ("Stationary combustion", "Fugitive emissions")) == \
        pytest.approx(exp["scope1_g"] / 1e3)
    sci = {r[0]: r[1:] for r in duckdb.execute(
        f"SELECT figure, quantity, functional_units FROM '{out / 'sci.csv'}' WHERE subject = 'fleet'").fetchall()}
    per_gpu_hour = sci["sci_g_per_gpu_hour_whole_nodes"]
    assert per_gpu_hour[1] == 3 * HOURS
    assert per_gpu_hour[0] == pytest.approx((exp["scope2_location_g"] + exp["scope3_embodied_g"]) / (3 * HOURS))
    inf = duckdb.execute(f"SELECT phase, sci_g_per_1k_tokens, tokens FROM '{out / 'inference.csv'}' ORDER BY phase"
                         ).fetchall()
    assert [r[0] for r in inf] == ["decode", "prefill"] and all(r[1] > 0 for r in inf)
    # Bad config and missing month are clear errors, not tracebacks.
    assert main(["report", "--month", "1999-01", "--db", str(db), "--out", str(out)]) == 1
    assert "no facts for 1999-01" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(config_text().replace(f"pue: {PUE}", "pue: 0.8"))
    assert main(args[:2] + [str(bad)] + args[3:]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:7: sites[0].pue: must be >= 1" in err and "unknown site" not in err
