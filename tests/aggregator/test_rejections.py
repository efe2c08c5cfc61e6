"""Rejected and failed readings reach the monthly report, counted and never summed.

The exporters count what they refuse or cannot read in
``wattfleet_collector_errors_total{collector, reason}``. Through a real
Prometheus (promtool backfill, known hourly increases) and through embedded
samples, ``aggregate`` then ``report``: the counts in DuckDB and in the
report equal the increases put in, reruns give identical rows, and a month
without any says so in one line.
"""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from fixtures.agg.backfill import History, Series
from fixtures.agg.e2e import GPU, H0, HOURS, OVERHEAD, N, config_text
from fixtures.agg.pipeline import NOW, STATIC_SITE, T0, put_gpu, write_config
from promserver import PROMTOOL, PrometheusServer, have_prometheus
from shared_data import needs_ciso
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.ingest.embedded import EmbeddedSource, parse_exposition
from wattfleet.aggregator.ingest.run import ingest, totals
from wattfleet.aggregator.outputs.documents import REJECTIONS_NONE, REJECTIONS_NOTE
from wattfleet.aggregator.outputs.report import write_report
from wattfleet.aggregator.store.database import open_store
from wattfleet.core import catalog

STAGED = ("SELECT hour_utc, node, cluster, site_label, collector, reason, readings, source "
          "FROM stg_collector_errors_hourly ORDER BY ALL")
ERR = catalog.COLLECTOR_ERRORS

# Per hour: (node, site label, collector, reason) -> readings. Every reason is kept as named, including
# one the aggregator has never heard of (the inference collector's reasons come from another branch).
PROM_PER_HOUR = {
    ("sfo1-n1", "sfo1", "nvml", "implausible_reading"): 60,
    ("sfo1-n1", "sfo1", "rapl", "read_error"): 3,
    ("sfo1-n2", "sfo1", "state_file", "write_failed"): 2,
    ("sfo1-n2", "sfo1", "inference", "engine_value_refused"): 1,
    ("lab-n9", "lab", "nvml", "gpu_lost"): 6,  # a node no site of the config claims
    # wattfleet_inference_rejected_samples_total{engine, endpoint, reason}: counted as collector inference:<engine>
    ("sfo1-n2", "sfo1", "inference:vllm", "not_finite"): 4,
}


def prom_history() -> History:
    """GPU energy for two nodes (the month has facts) and error counters with known hourly increases."""
    gpu = dict(method="measured", source="nvml", gpu_model=GPU)
    series = [
        Series(catalog.GPU_ENERGY, dict(node="sfo1-n1", gpu="0", uuid="GPU-a", **gpu, **N), 300),
        Series(catalog.GPU_ENERGY, dict(node="sfo1-n2", gpu="0", uuid="GPU-c", **gpu, **N), 250),
        Series(ERR, dict(node="sfo1-n1", cluster="c1", site="sfo1", collector="nvml", reason="timeout"), 0.0),
    ]
    for (node, site, collector, reason), per_hour in PROM_PER_HOUR.items():
        if collector.startswith("inference:"):
            labels = dict(node=node, cluster="c1", site=site, engine=collector.split(":", 1)[1],
                          endpoint="http://10.0.0.7:8000/metrics", reason=reason)
            series.append(Series(catalog.INFERENCE_REJECTED, labels, per_hour / 3600, start_value=5.0))
            continue
        labels = dict(node=node, cluster="c1", site=site, collector=collector, reason=reason)
        # the exporter restarted mid-history: its counter starts again at 0 and nothing is lost
        reset = H0 + timedelta(hours=2, minutes=30) if reason == "write_failed" else None
        series.append(Series(ERR, labels, per_hour / 3600, start_value=5.0, reset_at=reset))
    # An HA pair scraped sfo1-n1 twice: both replicas scrape the same target (same instance), the store keeps
    # the copies apart by the replica's external label; the same readings count once. (Another instance would
    # be another target, e.g. the exporter pod replaced: its series are summed, hourly_energy.TARGET_LABELS.)
    series.append(Series(ERR, dict(node="sfo1-n1", cluster="c1", site="sfo1", collector="nvml",
                                   reason="implausible_reading", prometheus_replica="replica-b"), 60 / 3600,
                         start_value=5.0))
    return History(H0, HOURS, series)


@pytest.fixture(scope="module")
def prom():
    server = PrometheusServer(targets=[])
    prom_history().write_blocks(PROMTOOL, server.dir / "data")
    with server:
        server.wait_for(ERR.series + "[10d]", min_results=len(PROM_PER_HOUR) + 1, timeout=30)
        yield server


def report_rows(out: Path) -> list[dict[str, str]]:
    """The rejections CSV's rows without the period columns every analyst table starts with."""
    with open(out / "rejections.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if k not in ("period_start", "period_end")} for r in csv.DictReader(fh)]


@needs_ciso
@pytest.mark.prometheus
@pytest.mark.skipif(not have_prometheus(), reason="prometheus/promtool not installed")
def test_prometheus_rejections_reach_the_report_and_reruns_are_identical(prom, tmp_path, capsys):
    from wattfleet.cli import main

    cfg = tmp_path / "facility.yaml"
    cfg.write_text(config_text())
    db = tmp_path / "wf.duckdb"
    end = H0 + timedelta(hours=HOURS)
    args = ["aggregate", "--config", str(cfg), "--db", str(db), "--prometheus", prom.url,
            "--from", H0.isoformat(), "--to", end.isoformat(), "--no-progress", "--page-hours", "3"]
    assert main(args) == 0
    con = open_store(db, read_only=True)
    staged = con.execute(STAGED).fetchall()
    con.close()
    hours = [(H0 + timedelta(hours=h)).replace(tzinfo=None) for h in range(HOURS)]
    # One row per series and hour, each the increase put in; the flat timeout counter gives none.
    assert [(r[0], r[1], r[3], r[4], r[5]) for r in staged] == sorted(
        (h, node, site, collector, reason) for h in hours for node, site, collector, reason in PROM_PER_HOUR)
    for _hour, node, cluster, site, collector, reason, readings, source in staged:
        assert readings == pytest.approx(PROM_PER_HOUR[node, site, collector, reason], rel=1e-9)
        assert (cluster, source) == ("c1", "prometheus")
    assert main(args) == 0  # the same range again
    con = open_store(db, read_only=True)
    assert con.execute(STAGED).fetchall() == staged
    # No energy figure moved: the readings were counted, not summed (300 W + 250 W of GPUs only).
    assert totals(con)["it_kwh"] == pytest.approx(0.550 * (1 + OVERHEAD) * HOURS, rel=1e-6)
    con.close()
    capsys.readouterr()

    month = H0.strftime("%Y-%m")
    in_month = sum(1 for h in hours if h.strftime("%Y-%m") == month)
    out = tmp_path / "report"
    assert main(["report", "--month", month, "--db", str(db), "--out", str(out), "--config", str(cfg)]) == 0
    rows = report_rows(out)
    expected = sorted(((site if site == "sfo1" else "", node, collector, reason, str(per_hour * in_month))
                       for (node, site, collector, reason), per_hour in PROM_PER_HOUR.items()),
                      key=lambda r: (r[0] == "", r))  # unmapped nodes (no site) last
    assert [tuple(r.values()) for r in rows] == expected
    assert list(rows[0]) == ["site", "node", "collector", "reason", "readings"]
    parquet = duckdb.execute(f"SELECT site, node, collector, reason, readings FROM '{out / 'rejections.parquet'}'"
                             ).fetchall()
    assert [(s or "", n, c, r, str(v)) for s, n, c, r, v in parquet] == expected
    md = (out / "report.md").read_text()
    data_quality = md[md.index("## Data quality"):]
    assert "### Rejected and failed readings" in data_quality and REJECTIONS_NOTE in data_quality
    assert f"| sfo1 | sfo1-n1 | nvml | implausible_reading | {60 * in_month} |" in data_quality
    assert f"| - | lab-n9 | nvml | gpu_lost | {6 * in_month} |" in data_quality
    assert "engine_value_refused" in (out / "report.html").read_text().replace("<wbr>", "")  # wraps at _
    # The data-quality table itself keeps its columns; the rejections are their own table.
    with open(out / "data_quality.csv", newline="") as fh:
        assert "readings" not in next(csv.reader(fh))
    first = (out / "rejections.csv").read_bytes()
    assert main(["report", "--month", month, "--db", str(db), "--out", str(out), "--config", str(cfg)]) == 0
    assert (out / "rejections.csv").read_bytes() == first


def put_errors(con, node: str, site: str, collector: str, reason: str, values: list[tuple[int, float]]) -> None:
    """Embedded samples of one error counter: (minutes after T0, counter value)."""
    labels = json.dumps({"node": node, "cluster": "c", "site": site, "collector": collector, "reason": reason},
                        sort_keys=True)
    con.executemany("INSERT INTO emb_sample VALUES (?, ?, ?, ?, ?)",
                    [(T0 + timedelta(minutes=m), f"{node}:9400", ERR.name, labels, v) for m, v in values])


def test_embedded_rejections_reach_the_report_and_reruns_are_identical(tmp_path):
    text = ('# TYPE wattfleet_collector_errors counter\nwattfleet_collector_errors_total{node="a-1",cluster="c",'
            'site="s1",collector="nvml",reason="implausible_reading"} 4\n')
    assert parse_exposition(text) == [(ERR.name, {"node": "a-1", "cluster": "c", "site": "s1", "collector": "nvml",
                                                  "reason": "implausible_reading"}, 4.0)]
    cfg_path = write_config(tmp_path, STATIC_SITE)
    cfg = load_facility(cfg_path)
    db = tmp_path / "wf.duckdb"
    con = open_store(db)
    put_gpu(con, "a-1", T0, 3, 1000)
    minutes = range(0, 181, 10)
    # +2 every 10 minutes (12 an hour); the exporter restarts at 01:30 and counts again from 0.
    put_errors(con, "a-1", "s1", "nvml", "implausible_reading",
               [(m, 2 * (m - 80) // 10 if m >= 90 else 2 * m // 10) for m in minutes])
    # One step an hour, on the hour: 1 an hour, whatever the reason is called.
    put_errors(con, "a-1", "s1", "inference", "engine_value_refused", [(m, float(m // 60)) for m in minutes])
    put_errors(con, "a-1", "s1", "rapl", "timeout", [(m, 5.0) for m in minutes])  # flat: nothing this month
    put_errors(con, "z-9", "s1", "state_file", "write_failed", [(0, 0.0), (60, 3.0)])  # site by its label
    result = ingest(con, cfg, EmbeddedSource(con), T0, T0 + timedelta(hours=3), now=NOW)
    assert result.collector_error_rows == 3 + 3 + 1
    staged = con.execute(STAGED).fetchall()
    assert sorted({(r[1], r[5]) for r in staged}) == [
        ("a-1", "engine_value_refused"), ("a-1", "implausible_reading"), ("z-9", "write_failed")]
    by_series: dict[tuple[str, str], list[float]] = {}
    for r in staged:
        by_series.setdefault((r[1], r[5]), []).append(r[6])
    assert by_series == {("a-1", "engine_value_refused"): [1.0, 1.0, 1.0],
                         ("a-1", "implausible_reading"): [12.0, 12.0, 12.0], ("z-9", "write_failed"): [3.0]}
    ingest(con, cfg, EmbeddedSource(con), T0, T0 + timedelta(hours=3), now=NOW)
    assert con.execute(STAGED).fetchall() == staged
    con.close()
    out = tmp_path / "report"
    write_report(db, "2022-01", out, cfg)
    assert [tuple(r.values()) for r in report_rows(out)] == [
        ("s1", "a-1", "inference", "engine_value_refused", "3"), ("s1", "a-1", "nvml", "implausible_reading", "36"),
        ("s1", "z-9", "state_file", "write_failed", "3")]
    md = (out / "report.md").read_text()
    assert REJECTIONS_NOTE in md and REJECTIONS_NONE not in md


def test_a_month_without_rejections_says_so_in_one_line(tmp_path):
    cfg = load_facility(write_config(tmp_path, STATIC_SITE))
    db = tmp_path / "wf.duckdb"
    con = open_store(db)
    put_gpu(con, "a-1", T0, 2, 1000)
    ingest(con, cfg, EmbeddedSource(con), T0, T0 + timedelta(hours=2), now=NOW)
    con.close()
    out = tmp_path / "report"
    write_report(db, "2022-01", out, cfg)
    md = (out / "report.md").read_text()
    part = md[md.index("### Rejected and failed readings"):].split("\n\n")
    assert part[1] == REJECTIONS_NONE and not part[2].startswith("|")
    assert REJECTIONS_NONE in (out / "report.html").read_text()
    assert (out / "rejections.csv").read_text() == "period_start,period_end,site,node,collector,reason,readings\n"
