"""The aggregation pipeline without servers: embedded samples -> staging -> facts -> rollups -> CLI.

Late data, gappy and malformed grid files, market-based Scope 2 with a
shared market instrument and an hourly PUE meter, unknown zones, the
embedded CLI with its progress bar, and ``report --month previous``; every
expected figure is computed by hand in the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from fixtures.agg.pipeline import NOW, STATIC_SITE, T0, put_gpu, write_config  # noqa: F401 (shared with other tests)
from paths import REPO
from shared_data import CISO, needs_ciso
from wattfleet.aggregator.argtypes import resolve_month
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.ingest.embedded import EmbeddedSource
from wattfleet.aggregator.ingest.run import get_watermark, ingest, totals
from wattfleet.aggregator.store.database import open_store, rebuild_month
from wattfleet.aggregator.store.rows import one_row
from wattfleet.core import catalog


def test_late_data_reprocesses_its_hours_and_reruns_are_identical(tmp_path):
    cfg = load_facility(write_config(tmp_path, STATIC_SITE))
    con = open_store(tmp_path / "wf.duckdb")
    put_gpu(con, "a-1", T0, 3, 1000)  # 1 kWh per hour, 00:00-03:00
    ingest(con, cfg, EmbeddedSource(con), T0, T0 + timedelta(hours=3), now=NOW)
    assert totals(con)["it_kwh"] == pytest.approx(3.0)
    # b-1's samples for 01:00-02:00 arrive late, after the watermark passed them.
    put_gpu(con, "b-1", T0 + timedelta(hours=1), 1, 2000)
    put_gpu(con, "a-1", T0 + timedelta(hours=3), 1, 1000, first=1000 * 3 * 3600)
    result = ingest(con, cfg, EmbeddedSource(con), None, T0 + timedelta(hours=4), lookback_hours=3, now=NOW)
    assert result.start == T0  # watermark 03:00 minus the 3 h lookback
    t = totals(con)
    assert t["it_kwh"] == pytest.approx(4.0 + 2.0) and t["facility_kwh"] == pytest.approx(6.0 * 1.5)
    assert t["scope2_location_g"] == pytest.approx(6.0 * 1.5 * 300)
    hour1 = one_row(con, "SELECT it_kwh FROM rollup WHERE period = 'hour' AND dimension = 'fleet' AND period_start = ?",
                         [T0 + timedelta(hours=1)])[0]
    assert hour1 == pytest.approx(3.0)
    assert get_watermark(con, "embedded") == T0 + timedelta(hours=4)
    # The same month again, by ingest and by a bare rebuild: bit-identical facts, rollups and totals.
    snapshot = (con.execute("SELECT * FROM rollup ORDER BY ALL").fetchall(), totals(con))
    ingest(con, cfg, EmbeddedSource(con), T0, T0 + timedelta(hours=4), now=NOW)
    rebuild_month(con, date(2022, 1, 1))
    assert (con.execute("SELECT * FROM rollup ORDER BY ALL").fetchall(), totals(con)) == snapshot


def gappy_ciso(tmp_path: Path, drop: set[str], bad: str | None = None) -> Path:
    """The real CISO rows of 1-2 January 2022, some hours removed (or one value broken)."""
    lines = CISO.read_text().splitlines()[:49]
    out = [lines[0]]
    for line in lines[1:]:
        if line[:13] in drop:
            continue
        if bad is not None and line.startswith(bad):
            line = line.rsplit(",", 1)[0] + ",not-a-number"
        out.append(line)
    p = tmp_path / "CISO.csv"
    p.write_text("\n".join(out) + "\n")
    return p


def ciso_value(hour: datetime) -> float:
    """avg_CI of the hour starting at ``hour``: EIA labels it by its end."""
    key = (hour + timedelta(hours=1)).strftime("%Y-%m-%d %H:00:00+00:00")
    for line in CISO.read_text().splitlines():
        if line.startswith(key):
            return float(line.rsplit(",", 1)[1])
    raise KeyError(key)


@needs_ciso
def test_gappy_real_grid_file_fills_and_flags_every_hour(tmp_path):
    gappy_ciso(tmp_path, {"2022-01-02 05", "2022-01-02 06"})
    cfg = load_facility(write_config(tmp_path, STATIC_SITE.replace(
        "zone: ZA\n  grid: {source: static, grams_per_kwh: 300}",
        # basis: direct keeps avg_CI whole (no split by the mix), so the facts hold the file's own values
        "zone: CISO\n  grid: {source: eia930, path: CISO.csv, fill: [previous_day_same_hour], basis: direct}")))
    con = open_store(tmp_path / "wf.duckdb")
    put_gpu(con, "a-1", T0, 8, 1000)
    result = ingest(con, cfg, EmbeddedSource(con), T0, T0 + timedelta(hours=8), now=NOW)
    assert result.filled_intensity_hours == 2
    rows = con.execute("SELECT hour_utc, grams_per_kwh, intensity_filled FROM fact_device_hour "
                       "WHERE component = 'gpu' ORDER BY hour_utc").fetchall()
    assert [r[0].hour for r in rows if r[2]] == [4, 5]  # the hours ending 05:00 and 06:00, flagged, only those
    for hour, grams, filled in rows:
        assert grams == pytest.approx(ciso_value(hour - timedelta(days=1) if filled else hour))
    expected = sum(1.5 * g for _, g, _ in rows)
    assert totals(con)["scope2_location_g"] == pytest.approx(expected)
    filled_kwh = one_row(con, "SELECT filled_intensity_kwh FROM rollup WHERE period='month' AND dimension='fleet'")[0]
    assert filled_kwh == pytest.approx(2 * 1.5)


@needs_ciso
def test_malformed_grid_file_and_unknown_zone_are_clear_cli_errors(tmp_path, capsys):
    from wattfleet.cli import main
    path = gappy_ciso(tmp_path, set(), bad="2022-01-02 03")
    cfg = write_config(tmp_path, STATIC_SITE.replace("zone: ZA\n  grid: {source: static, grams_per_kwh: 300}",
                                                     "zone: CISO\n  grid: {source: eia930, path: CISO.csv}"))
    db = tmp_path / "wf.duckdb"
    args = ["aggregate", "--config", str(cfg), "--db", str(db), "--embedded-targets", "127.0.0.1:1", "--once",
            "--from", "2022-01-02T00:00Z", "--to", "2022-01-02T06:00Z", "--no-progress"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"{path}:29" in err and "not-a-number" in err and "Traceback" not in err
    assert get_watermark(open_store(db), "embedded") is None  # nothing written for the window
    unknown = write_config(tmp_path, STATIC_SITE.replace("zone: ZA\n  grid: {source: static, grams_per_kwh: 300}",
                                                         "zone: XX-NOWHERE\n  grid: {source: static}"))
    assert main(["aggregate", "--config", str(unknown)] + args[3:]) == 2
    err = capsys.readouterr().err
    assert f"{unknown}:4: sites[0].zone: unknown zone 'XX-NOWHERE'" in err


def test_market_instrument_shared_by_consumption_and_hourly_pue_meter(tmp_path):
    sites = """\
    - name: sa
      zone: ZA
      grid: {source: static, grams_per_kwh: 300}
      pue:
        default: 1.2
        meter: [{hour: "2022-01-02T01:00Z", total_kwh: 150, it_kwh: 100}]
      wue_liters_per_kwh: 1.0
      residual_mix_grams_per_kwh: 400
      nodes: ["a-*"]
    - name: sb
      zone: ZA
      grid: {source: static, grams_per_kwh: 300}
      pue: 1.0
      wue_liters_per_kwh: 0.5
      nodes: ["b-*"]
    """
    extra = """\
    instruments:
      - {name: rec, type: rec, market: ZA, start: "2022-01-02T00:00Z", end: "2022-01-02T02:00Z", mwh: 0.0029,
         grams_per_kwh: 0}
    """
    cfg = load_facility(write_config(tmp_path, sites, extra))
    con = open_store(tmp_path / "wf.duckdb")
    put_gpu(con, "a-1", T0, 2, 1000)
    put_gpu(con, "b-1", T0, 2, 3000)
    ingest(con, cfg, EmbeddedSource(con), T0, T0 + timedelta(hours=2), now=NOW)
    site = {r[0]: r[1:] for r in con.execute(
        "SELECT key, facility_kwh, scope2_location_g, scope2_market_g, water_onsite_l FROM rollup "
        "WHERE period = 'month' AND dimension = 'site'").fetchall()}
    # sa: 1 kWh at PUE 1.2 (default) + 1 kWh at 1.5 (hourly meter) = 2.7; sb: 6 kWh at PUE 1.0.
    assert site["sa"][0] == pytest.approx(2.7) and site["sb"][0] == pytest.approx(6.0)
    # The 2.9 MWh... kWh REC is shared in proportion to consumption: 0.9 to sa, 2.0 to sb (a third each).
    assert site["sa"][2] == pytest.approx(2.7 * (2 / 3) * 400)  # residual mix for the uncovered rest
    assert site["sb"][2] == pytest.approx(6.0 * (2 / 3) * 300)  # no residual mix: location intensity, flagged
    assert site["sa"][1] + site["sb"][1] == pytest.approx(8.7 * 300)
    assert site["sa"][3] == pytest.approx(2.0) and site["sb"][3] == pytest.approx(3.0)  # WUE x IT energy
    pue = con.execute("SELECT hour_utc, pue, pue_source FROM fact_device_hour WHERE node = 'a-1' AND component = 'gpu' "
                      "ORDER BY hour_utc").fetchall()
    assert [(p[1], p[2]) for p in pue] == [(1.2, "default"), (1.5, "meter_hour")]
    flags = dict(con.execute("SELECT site, bool_and(residual_mix_missing) FROM fact_device_hour GROUP BY site"
                             ).fetchall())
    assert flags == {"sa": False, "sb": True}


def test_embedded_cli_once_with_progress_bar(tmp_path, capsys):
    from wattfleet.cli import main
    cfg = write_config(tmp_path, STATIC_SITE)
    db = tmp_path / "wf.duckdb"
    con = open_store(db)
    put_gpu(con, "a-1", T0, 2, 1000)
    con.close()
    assert main(["aggregate", "--config", str(cfg), "--db", str(db), "--embedded-targets", "127.0.0.1:1", "--once",
                 "--from", "2022-01-02T00:00Z", "--to", "2022-01-02T02:00Z"]) == 0
    captured = capsys.readouterr()
    assert "ingested 2 hour(s)" in captured.out and "IT 2.000 kWh, facility 3.000 kWh" in captured.out
    assert "ingest embedded" in captured.err and "2/2" in captured.err  # the tqdm progress bar


def test_report_month_previous(tmp_path, capsys):
    from wattfleet.cli import main
    assert resolve_month("previous", datetime(2026, 1, 15, tzinfo=timezone.utc)) == "2025-12"
    assert resolve_month("previous", datetime(2026, 11, 1, 0, 5, tzinfo=timezone.utc)) == "2026-10"
    assert resolve_month("2026-10") == "2026-10"
    db = tmp_path / "wf.duckdb"
    open_store(db).close()
    assert main(["report", "--month", "previous", "--db", str(db), "--out", str(tmp_path / "r")]) == 1
    assert f"no facts for {resolve_month('previous')}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "--month", "last", "--db", str(db), "--out", str(tmp_path / "r")])


def test_rollup_bench_smoke(tmp_path):
    out = tmp_path / "bench.json"
    bench = REPO / "bench" / "rollup_bench.py"
    proc = subprocess.run([sys.executable, str(bench), "--gpus", "16", "--hours", "24", "--json", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    d, p = data["results"]["duckdb"], data["results"]["pandas"]
    assert d["rollup_rows"] == p["rollup_rows"] > 0 and d["fleet_it_kwh"] == pytest.approx(p["fleet_it_kwh"])


def test_promql_is_built_from_the_catalog_and_hour_aligned():
    from wattfleet.aggregator.ingest.prometheus import _hour_start, energy_queries, inference_queries
    q = energy_queries()
    assert set(q) == {catalog.GPU_ENERGY.name, catalog.CPU_ENERGY.name}
    assert f"increase({catalog.GPU_ENERGY.series}[1h])" in q[catalog.GPU_ENERGY.name]
    domains = "|".join(catalog.RAPL_IT_DOMAINS)
    assert f'{catalog.CPU_ENERGY.series}{{domain=~"{domains}"}}[1h]' in q[catalog.CPU_ENERGY.name]
    inf = inference_queries()
    assert f"increase({catalog.INFERENCE_TOKENS.series}[1h])" in inf[catalog.INFERENCE_TOKENS.name]
    # A point at a whole-hour end T carries the hour (T-1h, T].
    end = datetime(2026, 10, 1, 5, tzinfo=timezone.utc).timestamp()
    assert _hour_start(end) == datetime(2026, 10, 1, 4)


def test_embedded_phase_energy_under_two_methods_counts_once():
    con = open_store(":memory:")
    base = {"node": "a-1", "cluster": "c", "site": "", "engine": "vllm", "model": "m", "phase": "decode"}
    for method, rate in ((catalog.PHASE_METHOD_TIME, 100.0), (catalog.PHASE_METHOD_TOKEN_FIT, 90.0)):
        labels = json.dumps(dict(base, method=method), sort_keys=True)
        con.executemany("INSERT INTO emb_sample VALUES (?, ?, ?, ?, ?)",
                        [(T0 + timedelta(minutes=m), "t", catalog.INFERENCE_PHASE_ENERGY.name, labels, rate * 60 * m)
                         for m in range(0, 61, 10)])
    labels = json.dumps(base, sort_keys=True)
    con.executemany("INSERT INTO emb_sample VALUES (?, ?, ?, ?, ?)",
                    [(T0 + timedelta(minutes=m), "t", catalog.INFERENCE_TOKENS.name, labels, 5.0 * 60 * m)
                     for m in range(0, 61, 10)])
    (row,) = EmbeddedSource(con).fetch(T0, T0 + timedelta(hours=1)).inference
    assert row.energy_joules == pytest.approx(100 * 3600) and row.tokens == pytest.approx(5 * 3600)
