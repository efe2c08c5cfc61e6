"""Embedded mode: scrape the real exporter directly, hourly energy from counter deltas in SQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from promserver import free_port
from wattfleet.aggregator.ingest.embedded import EmbeddedScraper, EmbeddedSource, parse_exposition, split_targets
from wattfleet.aggregator.store.database import open_store
from wattfleet.aggregator.store.rows import one_row
from wattfleet.core import catalog

LABELS = {"node": "n1", "cluster": "c", "site": "s", "gpu": "0", "uuid": "u", "gpu_model": "H100", "method": "measured",
          "source": "nvml"}


def put(con, ts, value, metric=catalog.GPU_ENERGY, labels=LABELS, target="t:1"):
    con.execute("INSERT INTO emb_sample VALUES (?, ?, ?, ?, ?)",
                [ts, target, metric.name, json.dumps(labels, sort_keys=True), value])


def test_hourly_deltas_with_reset_and_boundary_split():
    con = open_store(":memory:")
    t0 = datetime(2026, 10, 1, 0, 0)
    # 100 W sampled every 10 min from 00:00 to 02:00, restart (reset to 0) at 01:30, a sample
    # straddling 01:00 (00:55 -> 01:05).
    times = [t0 + timedelta(minutes=m) for m in (0, 10, 20, 30, 40, 50, 55, 65, 80, 90, 100, 110, 120)]
    value, last = 0.0, times[0]
    for t in times:
        if t == t0 + timedelta(minutes=90):
            value = 100 * 600 - 0.0  # restarted right after the 01:20 sample: 10 minutes counted from 0
            put(con, t, value)
            last = t
            continue
        value += 100 * (t - last).total_seconds()
        last = t
        put(con, t, value)
    tel = EmbeddedSource(con).fetch(t0, t0 + timedelta(hours=2))
    by_hour = {r.hour_utc: r.joules for r in tel.energy}
    assert by_hour[t0] == pytest.approx(100 * 3600)
    assert by_hour[t0 + timedelta(hours=1)] == pytest.approx(100 * 3600)
    assert tel.hours == [t0, t0 + timedelta(hours=1)]


def test_psys_and_core_are_never_stored():
    cpu = ('wattfleet_cpu_energy_joules_total{node="n",cluster="",site="",socket="0",domain="%s",'
           'method="measured",source="rapl"}')
    text = "\n".join([
        "# TYPE wattfleet_cpu_energy_joules counter",
        cpu % "package" + " 10",
        cpu % "psys" + " 99",
        cpu % "core" + " 5",
        "# TYPE wattfleet_gpu_power_watts gauge",
        'wattfleet_gpu_power_watts{node="n",gpu="0"} 300',
        ""])
    assert [(n, labels["domain"], v) for n, labels, v in parse_exposition(text)] == [
        (catalog.CPU_ENERGY.name, "package", 10.0)]


def test_split_targets():
    assert split_targets(["a:1,b:2", " c:3 "]) == ["a:1", "b:2", "c:3"]


def test_scrapes_real_exporter_and_survives_a_down_target():
    from wattfleet.core.http import MetricsServer
    from wattfleet.exporter.sampler import Sampler
    from wattfleet.exporter.sensors.nvml import NvmlSensor
    from wattfleet.sim.fake_nvml import FakeNvml

    fake = FakeNvml.with_gpus(2, watts=250)
    sampler = Sampler([NvmlSensor(fake)], const_labels={"node": "n1", "cluster": "c", "site": "s"}, interval=0.05)
    port = free_port()
    server = MetricsServer(f"127.0.0.1:{port}", lambda: sampler.snapshot)
    sampler.sample_once()
    server.start()
    con = open_store(":memory:")
    scraper = EmbeddedScraper(con, [f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}"], timeout=2)
    t0 = datetime(2026, 10, 1, 0, 59, 0)
    try:
        # kept: the 2 GPU energy counters and the nvml collector's timeout counter (published at 0)
        assert scraper.scrape_once(t0) == 3
        assert list(scraper.errors) == [scraper.targets[1]]
        first = sampler.snapshot
        sampler.sample_once()
        scraper.scrape_once(t0 + timedelta(minutes=2))
    finally:
        server.stop()
        sampler.stop()
    assert first is not None
    tel = EmbeddedSource(con).fetch(datetime(2026, 10, 1, 0), datetime(2026, 10, 1, 2))
    total = sum(r.joules for r in tel.energy)
    stored = one_row(con, "SELECT sum(v) FROM (SELECT max(value) - min(value) AS v FROM emb_sample GROUP BY labels)")[0]
    assert total == pytest.approx(stored)
    hours = {r.hour_utc for r in tel.energy}
    assert hours == {datetime(2026, 10, 1, 0), datetime(2026, 10, 1, 1)}  # split across the boundary
    assert {r.device for r in tel.energy} == {"0", "1"} and all(r.component == "gpu" for r in tel.energy)


def test_prompt_tokens_by_source_are_kept_and_an_unknown_source_is_not():
    """The contract's series (issue 14): computed, cached, transferred, unsplit; any other source is dropped."""
    series = ('wattfleet_inference_prompt_tokens_total{node="n1",cluster="c",site="s",engine="vllm",'
              'model="llama",source="%s"} %s')
    text = "\n".join(["# TYPE wattfleet_inference_prompt_tokens counter",
                      series % ("computed", 100), series % ("cached", 900), series % ("transferred", 0),
                      series % ("guessed", 5), ""])
    kept = parse_exposition(text)
    assert sorted((labels["source"], v) for _, labels, v in kept) == [
        ("cached", 900.0), ("computed", 100.0), ("transferred", 0.0)]
    con = open_store(":memory:")
    t0 = datetime(2026, 10, 1, 0, 0)
    labels = {"node": "n1", "cluster": "c", "site": "s", "engine": "vllm", "model": "llama"}
    for source, rate in (("computed", 1.0), ("cached", 9.0), ("unsplit", 3.0)):
        for m in range(0, 61, 10):
            put(con, t0 + timedelta(minutes=m), rate * 60 * m, catalog.INFERENCE_PROMPT_TOKENS,
                {**labels, "source": source})
    tel = EmbeddedSource(con).fetch(t0, t0 + timedelta(hours=1))
    got = {r.prompt_source: r.tokens for r in tel.prompt_tokens}
    assert got == {"computed": pytest.approx(3600.0), "cached": pytest.approx(9 * 3600.0),
                   "unsplit": pytest.approx(3 * 3600.0)}
    assert {(r.engine, r.model, r.node, r.source) for r in tel.prompt_tokens} == {("vllm", "llama", "n1", "embedded")}
