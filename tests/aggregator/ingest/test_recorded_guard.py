"""Pre-aggregation never replaces stored energy with hours the recording rule has not recorded (recorded_guard).

The raw history of fixtures/agg/e2e.py (hours 0..3 from H0) is served by a real Prometheus together with
blocks of the generated hourly-energy rule group, evaluated by Prometheus itself through
``promtool tsdb create-blocks-from rules`` (as tests/aggregator/ingest/test_pre_aggregated.py), for chosen
hours only: an hour left out is exactly what a rule that has not yet run (or failed) leaves in the store.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from fixtures.agg.backfill import History
from fixtures.agg.e2e import H0, HOURS, config_text, history
from fixtures.agg.vmserver import VictoriaMetricsServer, have_victoria_metrics
from paths import FACILITY_EXAMPLE
from promserver import PROMTOOL, PrometheusServer, have_prometheus
from shared_data import needs_ciso
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.config.model import FacilityConfig
from wattfleet.aggregator.ingest import recorded_guard
from wattfleet.aggregator.ingest.batch import TelemetryBatch
from wattfleet.aggregator.ingest.prometheus import PrometheusSource
from wattfleet.aggregator.ingest.run import IngestResult, get_watermark, ingest, totals
from wattfleet.aggregator.ingest.telemetry import EnergyRow, Telemetry, TelemetrySourceError
from wattfleet.aggregator.ingest.writer import write_page
from wattfleet.aggregator.outputs.serve import render as serve_render
from wattfleet.aggregator.store.database import open_store
from wattfleet.aggregator.store.rows import one_row
from wattfleet.cli import main
from wattfleet.core import catalog, hourly_energy
from wattfleet.core.http import HttpServer
from wattfleet.core.routes import JSON, Request, Response, Routes
from wattfleet.dashboards.build import HOURLY_ENERGY_FILE, render

START = H0.replace(tzinfo=None)
END = START + timedelta(hours=HOURS)
RECORDED_GPU = hourly_energy.RECORDED[catalog.GPU_ENERGY.name]


def hour(n: int) -> datetime:
    return START + timedelta(hours=n)


# --- the rule, without a store ------------------------------------------------------------------------------
def _check(n: int, read: dict[str, int], stored: dict[str, int] | None = None,
           before: dict[str, int] | None = None) -> recorded_guard.HourCheck:
    """Hour n checked with ``read`` rows per kind; ``before``: the hour before, as stored (n is the page's first)."""
    return recorded_guard.check_hours({hour(n): read}, {hour(n): stored or {}, hour(n - 1): before or {}},
                                      hour(n), hour(n + 1))[0]


def test_an_hour_is_complete_only_when_recorded_and_nothing_shrinks() -> None:
    assert _check(0, {"gpu": 3, "cpu": 2}).complete
    assert _check(0, {"gpu": 3, "cpu": 2}, stored={"gpu": 3, "cpu": 2}).complete
    assert _check(0, {"gpu": 4, "cpu": 2}, stored={"gpu": 3, "cpu": 2}).complete  # more: a device added
    assert "recorded nothing" in _check(0, {}).reason
    assert "recorded nothing" in _check(0, {}, stored={"gpu": 3}).reason
    assert _check(0, {"gpu": 2, "cpu": 2}, stored={"gpu": 3, "cpu": 2}).reason.startswith("gpu: 2 rows recorded, 3")
    assert _check(0, {"cpu": 2}, before={"gpu": 3}).reason.startswith("gpu: none recorded, though the hour before")
    # inside a page the hour before is what was read for it
    (first, second) = recorded_guard.check_hours({hour(0): {"gpu": 1, "workload": 2}, hour(1): {"gpu": 1}}, {},
                                                 hour(0), hour(2))
    assert first.complete and second.reason.startswith("workload: none recorded, though the hour before")


def test_plan_keeps_stored_hours_and_stops_at_the_first_new_incomplete_one() -> None:
    ok = [_check(n, {"gpu": 1}) for n in range(6)]
    missing = [_check(n, {}) for n in range(6)]
    hours = [ok[0], missing[1], ok[2], missing[3], ok[4], ok[5]]
    plan = recorded_guard.plan(hours, watermark=hour(3))
    assert plan.segments == [(hour(0), hour(1)), (hour(2), hour(3))]
    assert [c.hour for c in plan.kept] == [hour(1)]
    assert plan.stop is not None and plan.stop.hour == hour(3)
    assert recorded_guard.plan(hours, watermark=None).segments == [(hour(0), hour(1))]
    assert recorded_guard.plan(ok, watermark=None).segments == [(hour(0), hour(6))]


@given(st.lists(st.booleans(), min_size=1, max_size=30), st.one_of(st.none(), st.integers(0, 31)))
def test_plan_never_writes_an_incomplete_hour_nor_past_the_stop(complete: list[bool], watermark: int | None) -> None:
    checks = [_check(n, {"gpu": 1} if ok else {}) for n, ok in enumerate(complete)]
    plan = recorded_guard.plan(checks, None if watermark is None else hour(watermark))
    written = [h for first, last in plan.segments for h in range(int((first - START) / timedelta(hours=1)),
                                                                 int((last - START) / timedelta(hours=1)))]
    assert written == sorted(set(written)) and all(complete[n] for n in written)
    kept = [int((c.hour - START) / timedelta(hours=1)) for c in plan.kept]
    assert all(not complete[n] and watermark is not None and n < watermark for n in kept)
    stop = len(complete) if plan.stop is None else int((plan.stop.hour - START) / timedelta(hours=1))
    assert sorted(written + kept) == list(range(stop))  # every hour before the stop: written or kept as stored
    if plan.stop is not None:
        assert not complete[stop] and (watermark is None or stop >= watermark)


# --- against a real Prometheus ------------------------------------------------------------------------------
requires_prometheus = pytest.mark.skipif(not have_prometheus(), reason="prometheus/promtool not installed")


def against_stores(test: Callable[..., None]) -> Callable[..., None]:
    """A test with a real Prometheus and the e2e facility config (its grid comes from the shared CISO file)."""
    return pytest.mark.prometheus(requires_prometheus(needs_ciso(test)))


@pytest.fixture(scope="module")
def blocks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Raw history blocks, and the rule group's recorded blocks of hours 0-1, of hour 2 and of hour 3; and of
    hour 2 recorded while sfo1-n2's samples had not reached the store ("h2_partial": a remote-write lag)."""
    root = tmp_path_factory.mktemp("recorded-guard")
    rules = root / "wattfleet-hourly-energy.yaml"
    rules.write_text(render()[HOURLY_ENERGY_FILE])
    out = {"raw": root / "raw", "rules": rules}
    history().write_blocks(PROMTOOL, out["raw"])
    raw = PrometheusServer(targets=[])
    shutil.copytree(out["raw"], raw.dir / "data")
    with raw:
        raw.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=3, timeout=30)
        for name, first, last in (("h01", 0, 1), ("h2", 2, 2), ("h3", 3, 3)):
            out[name] = _record(raw.url, rules, root / name, first, last)
    full = history()
    partial = PrometheusServer(targets=[])
    History(full.start, full.hours, [s for s in full.series if s.labels.get("node") != "sfo1-n2"]).write_blocks(
        PROMTOOL, partial.dir / "data")
    with partial:
        partial.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=2, timeout=30)
        out["h2_partial"] = _record(partial.url, rules, root / "h2_partial", 2, 2)
    return out


def _record(url: str, rules: Path, out: Path, first: int, last: int) -> Path:
    """Blocks of the group's series for hours first..last: hour n (ending at H0 + n + 1 h) is recorded when the
    group runs within the hour after its end."""
    subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "rules", f"--url={url}",
                    f"--start={int((H0 + timedelta(hours=first + 1)).timestamp())}",
                    f"--end={int((H0 + timedelta(hours=last + 2)).timestamp()) - 1}",
                    f"--output-dir={out}", str(rules)], check=True, capture_output=True, timeout=120)
    return out


def serving(blocks: dict[str, Path], *recorded: str, rules: bool = False) -> PrometheusServer:
    """A Prometheus holding the raw history and the recorded blocks named (``rules``: and the group loaded)."""
    server = PrometheusServer(targets=[], rule_files=[blocks["rules"]] if rules else [])
    shutil.copytree(blocks["raw"], server.dir / "data")
    for name in recorded:
        for block in blocks[name].iterdir():
            shutil.copytree(block, server.dir / "data" / block.name)
    return server


def aggregate(con, cfg: FacilityConfig, url: str, pre_aggregated: bool, **kw) -> IngestResult:
    source = PrometheusSource(url, pre_aggregated=pre_aggregated, retries=0)
    kw.setdefault("start", START)
    kw.setdefault("end", END)
    return ingest(con, cfg, source, now=H0 + timedelta(hours=HOURS + 1), **kw)


def stored(con) -> list[tuple]:
    rows = con.execute("SELECT * EXCLUDE (source) FROM stg_energy_hourly ORDER BY ALL").fetchall()
    return rows + con.execute("SELECT hour_utc, node, component, namespace, workload, share, round(sum(joules), 6) "
                              "FROM stg_workload_hourly GROUP BY ALL ORDER BY ALL").fetchall()


def recorded_hours(server: PrometheusServer) -> set[datetime]:
    """The hours (from H0) the store holds the group's GPU energy for."""
    return {H0.replace(tzinfo=None) + timedelta(hours=n) for n, lines in _recorded_openmetrics(server).items()
            if any(line.startswith(RECORDED_GPU) for line in lines)}


@against_stores
def test_unrecorded_hour_is_not_written_and_its_stored_rows_survive(blocks, cfg, tmp_path, capsys, caplog) -> None:
    """(1) Hour 3 not recorded yet: a fresh store stops before it; a store holding it keeps its rows.
    (2) Once recorded, the next run writes it and the totals equal the raw path's."""
    raw_con, pre_con = open_store(tmp_path / "raw.duckdb"), open_store(tmp_path / "pre.duckdb")
    cfg_path = tmp_path / "facility.yaml"
    cfg_path.write_text(config_text())
    with serving(blocks, "h01", "h2", rules=True) as server:
        server.wait_for(f"{RECORDED_GPU}[10d]", min_results=3, timeout=30)
        assert recorded_hours(server) == {hour(0), hour(1), hour(2)}
        aggregate(raw_con, cfg, server.url, pre_aggregated=False)
        reference = stored(raw_con)
        result = aggregate(pre_con, cfg, server.url, pre_aggregated=True)
        assert result.stopped_before is not None and result.stopped_before.hour == hour(3)
        assert "recorded nothing" in result.stopped_before.reason
        assert result.windows == 3
        assert get_watermark(pre_con, "prometheus") == hour(3)
        assert stored(pre_con) == [r for r in reference if r[0] < hour(3)]
        assert [h for (h,) in pre_con.execute("SELECT hour_utc FROM ingest_window ORDER BY 1").fetchall()] == \
            [hour(0), hour(1), hour(2)]
        for table in ("stg_energy_hourly", "stg_workload_hourly", "stg_inference_hourly",
                      "stg_collector_errors_hourly", "stg_inference_prompt_hourly"):
            assert pre_con.execute(f"SELECT DISTINCT source FROM {table}").fetchall() in ([], [("prometheus",)])
        # The command says so in its summary and log, and exits 0. Its clock is real: hour 3 ended over 2 h ago,
        # overdue, so it also says what the store's rules API knows of the group (loaded, not run yet: hourly).
        args = ["aggregate", "--config", str(cfg_path), "--db", str(tmp_path / "cli.duckdb"), "--prometheus",
                server.url, "--from", START.isoformat(), "--to", END.isoformat(), "--no-progress", "--pre-aggregated"]
        caplog.clear()  # only the command's records: an earlier test may have left this logger at INFO
        with caplog.at_level(logging.INFO, logger="wattfleet.aggregator.ingest.run"):
            assert main(args) == 0
        summary = capsys.readouterr().out
        assert f"ingested 3 hour(s) {START:%Y-%m-%dT%H:%MZ}" in summary
        assert f"; pre-aggregated: stopped before {hour(3):%Y-%m-%dT%H:%MZ}: rule group wattfleet-hourly-energy " \
               "has recorded nothing for this hour" in summary
        assert f" (rules API, group wattfleet-hourly-energy: {blocks['rules']}: " in summary
        (warning,) = [r for r in caplog.records if "pre-aggregated: stopped before" in r.getMessage()]
        assert warning.levelno == logging.WARNING and "rules API, group wattfleet-hourly-energy" in warning.getMessage()
        # The raw store holds hour 3: re-reading it pre-aggregated keeps it (it is below the watermark).
        again = aggregate(raw_con, cfg, server.url, pre_aggregated=True)
        assert [c.hour for c in again.kept_hours] == [hour(3)] and again.stopped_before is None
        assert stored(raw_con) == reference
    with serving(blocks, "h01", "h2", "h3") as server:
        server.wait_for(f"{RECORDED_GPU}[10d]", min_results=3, timeout=30)
        # the next run, as a CronJob makes it: from the watermark less the lookback to the last complete hour
        result = aggregate(pre_con, cfg, server.url, pre_aggregated=True, start=None, end=None, lookback_hours=3)
        assert result.start == hour(0) and result.end == END
        assert result.stopped_before is None and not result.kept_hours
        assert get_watermark(pre_con, "prometheus") == END
    assert stored(pre_con) == reference
    assert totals(pre_con) == totals(raw_con)
    raw_con.close()
    pre_con.close()


@against_stores
def test_switching_a_raw_store_to_pre_aggregated_loses_nothing(blocks, cfg, tmp_path) -> None:
    """(3) Hours ingested raw, rules loaded since hour 2 only: the switch keeps hours 0-1 and rewrites 2-3 equal."""
    con = open_store(tmp_path / "store.duckdb")
    with serving(blocks, "h2", "h3") as server:
        server.wait_for(f"{RECORDED_GPU}[10d]", min_results=3, timeout=30)
        aggregate(con, cfg, server.url, pre_aggregated=False)
        reference, reference_totals = stored(con), totals(con)
        status = PrometheusSource(server.url, retries=0).rule_group_status(recorded_guard.GROUP)
        assert status == "the store's rules API does not list group wattfleet-hourly-energy (evaluated elsewhere, " \
                         "or not loaded)"
        result = aggregate(con, cfg, server.url, pre_aggregated=True, start=None, end=None, lookback_hours=HOURS)
    assert result.start == hour(0)
    assert [c.hour for c in result.kept_hours] == [hour(0), hour(1)] and result.stopped_before is None
    assert result.windows == 2
    assert stored(con) == reference
    assert totals(con) == reference_totals
    con.close()


@against_stores
def test_an_hour_recorded_with_fewer_series_than_stored_is_not_replaced(blocks, cfg, tmp_path) -> None:
    """Hour 2 recorded while one node's samples were missing: a store holding it keeps it; a fresh one stops."""
    con, fresh = open_store(tmp_path / "store.duckdb"), open_store(tmp_path / "fresh.duckdb")
    with serving(blocks, "h01", "h2_partial", "h3") as server:
        server.wait_for(f"{RECORDED_GPU}[10d]", min_results=3, timeout=30)
        aggregate(con, cfg, server.url, pre_aggregated=False)
        reference = stored(con)
        result = aggregate(con, cfg, server.url, pre_aggregated=True)
        new = aggregate(fresh, cfg, server.url, pre_aggregated=True)
    assert [c.hour for c in result.kept_hours] == [hour(2)]
    assert result.kept_hours[0].reason == "gpu: 2 rows recorded, 3 stored (stored energy would be lost)"
    assert stored(con) == reference
    # Not stored yet: the workload rule recorded nothing for hour 2, after recording hour 1.
    assert new.stopped_before is not None and new.stopped_before.hour == hour(2)
    assert new.stopped_before.reason.startswith("workload: none recorded, though the hour before has some")
    assert stored(fresh) == [r for r in reference if r[0] < hour(2)]
    con.close()
    fresh.close()


def _recorded_openmetrics(server: PrometheusServer) -> dict[int, list[str]]:
    """The group's recorded samples as OpenMetrics lines with timestamps, by the hour (from H0) they record."""
    names = "|".join(list(hourly_energy.RECORDED.values()) + [hourly_energy.RECORDED_WORKLOAD])
    out: dict[int, list[str]] = {}
    for series in server.query(f'{{__name__=~"{names}"}}[1d]'):
        labels = dict(series["metric"])
        name = labels.pop("__name__")
        text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for ts, value in series["values"]:
            n = int((float(ts) - H0.timestamp()) // 3600) - 1  # stamped within the hour after the one recorded
            out.setdefault(n, []).append(f"{name}{{{text}}} {value} {float(ts)}")
    return out


@against_stores
@pytest.mark.skipif(not have_victoria_metrics(), reason="victoria-metrics not installed")
def test_victoriametrics_holding_the_recorded_series(blocks, cfg, tmp_path) -> None:
    """The group evaluated by Prometheus, its output written to VictoriaMetrics (remote write; copied here
    through the query API) hour by hour: the guard and the read give there what they give on Prometheus."""
    with serving(blocks, "h01", "h2", "h3") as server:
        server.wait_for(f"{RECORDED_GPU}[10d]", min_results=3, timeout=30)
        recorded = _recorded_openmetrics(server)
    assert sorted(n for n in recorded if n >= 0) == list(range(HOURS))
    raw_con, con = open_store(tmp_path / "raw.duckdb"), open_store(tmp_path / "pre.duckdb")
    with VictoriaMetricsServer() as vm:
        vm.import_openmetrics(history().openmetrics() + "\n".join(recorded[0] + recorded[1] + recorded[2]) + "\n")
        aggregate(raw_con, cfg, vm.url, pre_aggregated=False)
        first = aggregate(con, cfg, vm.url, pre_aggregated=True)
        assert first.stopped_before is not None and first.stopped_before.hour == hour(3) and first.windows == 3
        vm.import_openmetrics("\n".join(recorded[3]) + "\n")
        second = aggregate(con, cfg, vm.url, pre_aggregated=True, start=None, end=None, lookback_hours=3)
    assert second.stopped_before is None and not second.kept_hours
    assert stored(con) == stored(raw_con)
    assert totals(con) == totals(raw_con)
    raw_con.close()
    con.close()


# --- raw mode: a lookback re-read never shrinks a stored hour ----------------------------------------------
def test_raw_mode_keeps_only_shrinking_rereads_and_never_stops() -> None:
    def raw(n: int, read: dict[str, int], stored: dict[str, int]) -> recorded_guard.HourCheck:
        return recorded_guard.check_hours({hour(n): read}, {hour(n): stored, hour(n - 1): {"workload": 5}},
                                          hour(n), hour(n + 1), raw=True)[0]

    assert raw(0, {}, {}).complete  # nothing read, nothing stored: nothing to lose (no "recorded nothing" rule)
    assert raw(0, {"gpu": 3}, {}).complete  # no "kind the hour before has" rule: a workload may end
    assert raw(0, {"gpu": 4, "cpu": 2}, {"gpu": 3, "cpu": 2}).complete  # grows: replaced (late samples)
    assert raw(0, {"gpu": 2, "cpu": 2}, {"gpu": 3, "cpu": 2}).reason == \
        "gpu: 2 rows read, 3 stored (stored energy would be lost)"
    assert raw(0, {"gpu": 3}, {"gpu": 3, "cpu": 2}).reason.startswith("cpu: 0 rows read, 2 stored")  # a kind lost
    shrunk = [raw(n, {"gpu": 1}, {"gpu": 2}) for n in range(4)]
    plan = recorded_guard.plan(shrunk, watermark=hour(2), raw=True)
    assert [c.hour for c in plan.kept] == [hour(0), hour(1)] and plan.stop is None
    assert plan.segments == [(hour(2), hour(4))]  # at or past the watermark: new hours, written as read


def _without_node_after(node: str, after: datetime) -> History:
    """The e2e history as a store holds it when ``node``'s samples after ``after`` are missing."""
    full = history()
    return History(full.start, full.hours, [replace(s, until=after) if s.labels.get("node") == node else s
                                            for s in full.series])


@pytest.fixture(scope="module")
def raw_blocks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Raw blocks of the whole history; with sfo1-n2 lost from hour 2 on ("lost": a shard down, a Prometheus
    that restarted without its WAL); with sfo1-n2's samples only until 02:30 ("late": the rest not there yet)."""
    root = tmp_path_factory.mktemp("raw-guard")
    out = {name: root / name for name in ("full", "lost", "late")}
    history().write_blocks(PROMTOOL, out["full"])
    _without_node_after("sfo1-n2", H0 + timedelta(hours=2)).write_blocks(PROMTOOL, out["lost"])
    _without_node_after("sfo1-n2", H0 + timedelta(hours=2, minutes=30)).write_blocks(PROMTOOL, out["late"])
    return out



def raw_store(blocks: dict[str, Path], name: str) -> PrometheusServer:
    server = PrometheusServer(targets=[])
    shutil.copytree(blocks[name], server.dir / "data")
    return server


def energy_rows(con, n: int) -> int:
    return int(con.execute("SELECT count(*) FROM stg_energy_hourly WHERE hour_utc = ?", [hour(n)]).fetchone()[0])


@against_stores
def test_raw_reread_of_a_store_that_lost_data_keeps_the_stored_hours(raw_blocks, cfg, tmp_path, caplog,
                                                                     capsys) -> None:
    """(1) Stored from the full store, re-read (lookback) from one that lost sfo1-n2 from hour 2: hours 2 and 3
    keep their rows, totals unchanged, a warning names hour and counts, the summary counts them. Hours past
    the watermark are new: written as read, whatever they hold."""
    con, behind = open_store(tmp_path / "store.duckdb"), open_store(tmp_path / "behind.duckdb")
    with raw_store(raw_blocks, "full") as server:
        server.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=3, timeout=30)
        aggregate(con, cfg, server.url, pre_aggregated=False)
        aggregate(behind, cfg, server.url, pre_aggregated=False, end=hour(2))
    reference, reference_totals = stored(con), totals(con)
    cfg_path = tmp_path / "facility.yaml"
    cfg_path.write_text(config_text())
    with raw_store(raw_blocks, "lost") as server:
        server.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=2, timeout=30)
        with caplog.at_level(logging.WARNING, logger="wattfleet.aggregator.ingest.run"):
            result = aggregate(con, cfg, server.url, pre_aggregated=False, start=None, end=None,
                               lookback_hours=HOURS)
        assert main(["aggregate", "--config", str(cfg_path), "--db", str(tmp_path / "store.duckdb"),
                     "--prometheus", server.url, "--lookback-hours", str(HOURS), "--to", END.isoformat(),
                     "--no-progress"]) == 0
        new = aggregate(behind, cfg, server.url, pre_aggregated=False, start=None, end=None, lookback_hours=2)
    assert result.start == hour(0) and result.guard_mode == "raw"
    assert [c.hour for c in result.kept_hours] == [hour(2), hour(3)] and result.stopped_before is None
    assert result.kept_hours[0].reason == "gpu: 2 rows read, 3 stored (stored energy would be lost)"
    assert result.windows == 2  # hours 0 and 1 re-read equal and replaced
    assert stored(con) == reference
    assert totals(con) == reference_totals
    (warning, *_) = [r for r in caplog.records if "raw: kept the stored rows" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert f"{hour(2):%Y-%m-%dT%H:%MZ}: gpu: 2 rows read, 3 stored" in warning.getMessage()
    assert "rows read gpu 2, cpu 2, workload " in warning.getMessage()
    assert "; raw: 2 re-read hour(s) kept as stored, the store answered less (first " in capsys.readouterr().out
    # noted in the store for serve's metrics: the ingest() run and the CLI run each kept hours 2 and 3
    assert con.execute("SELECT hour_utc, mode, keeps FROM ingest_kept_hour ORDER BY ALL").fetchall() == \
        [(hour(2), "raw", 2), (hour(3), "raw", 2)]
    # a store whose watermark was hour 2: hours 0-1 re-read, 2-3 new and written as read (sfo1-n2 missing)
    assert not new.kept_hours and new.windows == 4
    assert (energy_rows(behind, 1), energy_rows(behind, 2)) == (energy_rows(con, 1), energy_rows(con, 2) - 2)
    con.close()
    behind.close()


@against_stores
def test_raw_reread_with_late_samples_still_updates(raw_blocks, cfg, tmp_path) -> None:
    """(2) Stored while sfo1-n2's samples after 02:30 had not arrived; the re-read once they have replaces hour 2's
    values and adds hour 3's rows: the store ends equal to one ingested from the full store at once."""
    con, reference_con = open_store(tmp_path / "store.duckdb"), open_store(tmp_path / "reference.duckdb")
    with raw_store(raw_blocks, "late") as server:
        server.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=3, timeout=30)
        aggregate(con, cfg, server.url, pre_aggregated=False)
    early = stored(con)
    with raw_store(raw_blocks, "full") as server:
        server.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=3, timeout=30)
        aggregate(reference_con, cfg, server.url, pre_aggregated=False)
        result = aggregate(con, cfg, server.url, pre_aggregated=False, start=None, end=None, lookback_hours=HOURS)
    assert not result.kept_hours and result.windows == HOURS
    assert stored(con) == stored(reference_con) != early
    assert energy_rows(con, 2) == energy_rows(con, 1)
    assert totals(con) == totals(reference_con)
    con.close()
    reference_con.close()


class PartialProxy:
    """Passes the API to a real Prometheus and flags each range answer ``"isPartial": true``, as a
    VictoriaMetrics cluster answers when vmstorage nodes missed the query (its documented format)."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.flagged = upstream, 0

    def __call__(self, request: Request) -> Response:
        target = f"{self.upstream}{request.path}" + (f"?{request.query}" if request.query else "")
        data = request.body if request.method == "POST" else None
        headers = {"Content-Type": request.headers.get("Content-Type", "application/x-www-form-urlencoded")}
        with urllib.request.urlopen(urllib.request.Request(target, data=data, headers=headers), timeout=30) as r:
            body = r.read()
        if request.path.endswith("/query_range"):
            answer = json.loads(body)
            answer["isPartial"] = True
            body = json.dumps(answer).encode()
            self.flagged += 1
        return Response(200, body, JSON)


@against_stores
def test_a_partial_answer_never_replaces_stored_rows(raw_blocks, cfg, tmp_path) -> None:
    """(3) Stored from the full store; re-read through a store flagging its answers partial (behind it, the store
    whose sfo1-n2 stops at 02:30: hour 2 would read as many rows as stored, with less energy, so only the flag
    tells): the run fails after its retries and nothing stored changes."""
    con = open_store(tmp_path / "store.duckdb")
    with raw_store(raw_blocks, "full") as server:
        server.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=3, timeout=30)
        aggregate(con, cfg, server.url, pre_aggregated=False)
    reference, reference_totals = stored(con), totals(con)
    with raw_store(raw_blocks, "late") as server:
        server.wait_for(catalog.GPU_ENERGY.series + "[10d]", min_results=3, timeout=30)
        proxy = PartialProxy(server.url)
        front = HttpServer("127.0.0.1:0", Routes(exact={}, prefixes={"/api/v1/": proxy}))
        front.start()
        try:
            source = PrometheusSource(f"http://127.0.0.1:{front.port}", retries=1, backoff_seconds=0.01)
            with pytest.raises(TelemetrySourceError, match=r"after 2 attempts: the store flags its answer as partial"):
                ingest(con, cfg, source, now=H0 + timedelta(hours=HOURS + 1), lookback_hours=HOURS)
        finally:
            front.stop()
    assert proxy.flagged >= 2
    assert stored(con) == reference
    assert totals(con) == reference_totals
    con.close()


# --- a kept hour is visible after the batch run: the store notes it, `serve` publishes it -------------------
def _gpu_page(n: int, nodes: int) -> list[TelemetryBatch]:
    rows = [EnergyRow(hour(n), f"n{i}", "c", "s1", "0", "gpu", "gpu", "NVIDIA H100", "measured", 3.6e6, "x")
            for i in range(nodes)]
    return [TelemetryBatch.from_telemetry(Telemetry([hour(n)], rows, []))]


def test_a_kept_hour_is_noted_in_the_store_and_served_as_metrics(tmp_path: Path) -> None:
    """Hour 0 stored with 3 GPUs, re-read (raw, below the watermark) twice with 2: each keep adds to
    ingest_kept_hour in the page's transaction, and serve's /metrics counts them (promtool-clean)."""
    path = tmp_path / "wf.duckdb"
    con = open_store(path)
    write_page(con, "prometheus", hour(0), hour(1), _gpu_page(0, 3))
    watermark = get_watermark(con, "prometheus")
    for _ in range(2):
        guard = recorded_guard.page_guard(con, object(), "prometheus", hour(0), hour(1), watermark)
        assert guard is not None and guard.raw
        write_page(con, "prometheus", hour(0), hour(1), _gpu_page(0, 2), guard)
        assert [c.hour for c in guard.plan.kept] == [hour(0)]
    assert energy_rows(con, 0) == 3  # kept as stored
    assert con.execute("SELECT source, hour_utc, mode, reason, read_gpu_rows, stored_gpu_rows, keeps "
                       "FROM ingest_kept_hour").fetchall() == [
        ("prometheus", hour(0), "raw", "gpu: 2 rows read, 3 stored (stored energy would be lost)", 2, 3, 2)]
    last_kept = one_row(con, "SELECT last_kept_at FROM ingest_kept_hour")[0]
    con.close()

    cfg = load_facility(FACILITY_EXAMPLE)
    ro = open_store(path, read_only=True)
    body = serve_render(ro, cfg, now=H0)
    ro.close()
    labels = {"source": "prometheus", "mode": "raw"}
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}
    assert found[(catalog.AGGREGATOR_KEPT_WINDOWS.series, tuple(sorted(labels.items())))] == 2
    assert found[(catalog.AGGREGATOR_LAST_KEPT.series, tuple(sorted(labels.items())))] == \
        last_kept.replace(tzinfo=timezone.utc).timestamp()
    if have_prometheus():
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=30)
        assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), check.stdout + check.stderr


def test_a_rollback_drops_the_note_with_the_page(tmp_path: Path) -> None:
    """The note is written in the page's transaction: a page that fails after the guard leaves no note."""
    con = open_store(tmp_path / "wf.duckdb")
    write_page(con, "prometheus", hour(0), hour(1), _gpu_page(0, 3))
    watermark = get_watermark(con, "prometheus")
    guard = recorded_guard.page_guard(con, object(), "prometheus", hour(0), hour(1), watermark)
    assert guard is not None

    def failing(pending: str) -> list[tuple[datetime, datetime]]:
        guard(pending)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_page(con, "prometheus", hour(0), hour(1), _gpu_page(0, 2), failing)
    assert one_row(con, "SELECT count(*) FROM ingest_kept_hour")[0] == 0
    assert energy_rows(con, 0) == 3
    con.close()
