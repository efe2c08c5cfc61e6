"""The inference step on embedded-mode samples (no Prometheus): requests, methods, the stated attribution
and the token fit come from ``emb_sample`` as they come from PromQL otherwise.

A synthetic day scraped every 5 minutes: a vLLM engine on GPUs 0 and 1 of node n1 whose energy is
idle W x s + a x computed + c x cached + b x decode (1% noise, cache hit rate drifting 0-90%), a TGI
engine with phase_time energy on GPU 2 (never fitted), and the exporter's attribution statements.
"""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta

import pytest

from wattfleet.aggregator.inference.fit_step import is_embedded, run_inference_step, supports
from wattfleet.aggregator.ingest.embedded import EmbeddedSource, parse_exposition
from wattfleet.aggregator.store.database import open_store
from wattfleet.core import catalog

T0 = datetime(2026, 10, 1)
STEP_MIN, HOURS = 5, 24
IDLE_W, A, B, C = 200.0, 0.05, 0.4, 0.003
NODE = {"node": "n1", "cluster": "c", "site": "s"}
VLLM = {**NODE, "engine": "vllm", "model": "llama"}
TGI = {**NODE, "engine": "tgi", "model": "bloom"}


def _put(rows: list, t: datetime, metric: catalog.Metric, labels: dict[str, str], value: float) -> None:
    rows.append((t, "n1:9880", metric.name, json.dumps(labels, sort_keys=True), value))


@pytest.fixture(scope="module")
def store():
    rng = random.Random(3)
    con = open_store(":memory:")
    rows: list = []
    cum = {k: 0.0 for k in ("e", "p", "c", "d", "r", "tgi")}
    gpu = {**NODE, "gpu_model": "H100", "method": "measured", "source": "nvml"}
    steps = HOURS * 60 // STEP_MIN
    for i in range(steps + 1):
        t = T0 + timedelta(minutes=STEP_MIN * i)
        if i:
            prompt, d = rng.uniform(0, 5e6), rng.uniform(0, 5e5)
            cached = prompt * 0.45 * (1 + math.sin(i / 25))
            cum["p"] += prompt - cached
            cum["c"] += cached
            cum["d"] += d
            cum["r"] += d / 200
            seconds = STEP_MIN * 60
            cum["e"] += (IDLE_W * seconds + A * (prompt - cached) + C * cached + B * d) * (1 + rng.gauss(0, 0.01))
            cum["tgi"] += 300.0 * seconds
        for g, share in (("0", 0.6), ("1", 0.4)):
            _put(rows, t, catalog.GPU_ENERGY, {**gpu, "gpu": g, "uuid": f"GPU-{g}"}, share * cum["e"])
            _put(rows, t, catalog.INFERENCE_ENGINE_GPUS, {**VLLM, "gpu": g}, 1.0)
        _put(rows, t, catalog.GPU_ENERGY, {**gpu, "gpu": "2", "uuid": "GPU-2"}, cum["tgi"])
        _put(rows, t, catalog.INFERENCE_ENGINE_GPUS, {**TGI, "gpu": "2"}, 1.0)
        _put(rows, t, catalog.INFERENCE_TOKENS, {**VLLM, "phase": "prefill"}, cum["p"])
        _put(rows, t, catalog.INFERENCE_TOKENS, {**VLLM, "phase": "decode"}, cum["d"])
        _put(rows, t, catalog.INFERENCE_PROMPT_TOKENS, {**VLLM, "source": "computed"}, cum["p"])
        _put(rows, t, catalog.INFERENCE_PROMPT_TOKENS, {**VLLM, "source": "cached"}, cum["c"])
        _put(rows, t, catalog.INFERENCE_REQUESTS, VLLM, cum["r"])
        _put(rows, t, catalog.INFERENCE_ATTRIBUTION,
             {**VLLM, "method": "token_fit", "chunked_prefill": "unknown", "assumption": "token_fit"}, 1.0)
        for phase, share in (("prefill", 0.3), ("decode", 0.5), ("idle", 0.2)):
            _put(rows, t, catalog.INFERENCE_PHASE_ENERGY, {**TGI, "phase": phase, "method": "phase_time"},
                 share * cum["tgi"])
        _put(rows, t, catalog.INFERENCE_TOKENS, {**TGI, "phase": "prefill"}, 1000.0 * i)
        _put(rows, t, catalog.INFERENCE_TOKENS, {**TGI, "phase": "decode"}, 100.0 * i)
        _put(rows, t, catalog.INFERENCE_ATTRIBUTION,
             {**TGI, "method": "phase_time", "chunked_prefill": "true", "assumption": "mixed_forward_as_prefill"}, 1)
    con.executemany("INSERT INTO emb_sample VALUES (?, ?, ?, ?, ?)", rows)
    source = EmbeddedSource(con)
    assert is_embedded(source) and not supports(source)
    result = run_inference_step(con, source, T0, T0 + timedelta(hours=HOURS), now=T0 + timedelta(days=1))
    return con, cum, result


def test_the_token_fit_runs_on_embedded_samples(store):
    con, cum, result = store
    (s,) = result.summaries   # TGI has phase_time energy: never fitted
    assert (s["engine"], s["status"], s["cached_term"]) == ("vllm", "fitted", "fitted")
    assert s["joules_per_prefill_token"] == pytest.approx(A, rel=0.05)
    assert s["joules_per_decode_token"] == pytest.approx(B, rel=0.05)
    assert s["idle_watts"] == pytest.approx(IDLE_W, rel=0.05)
    fitted = con.execute("SELECT sum(energy_joules), count(DISTINCT hour_utc) FROM stg_inference_hourly "
                         "WHERE source = 'embedded/token_fit'").fetchone()
    assert fitted[0] == pytest.approx(cum["e"] - 0.0, rel=1e-9) and fitted[1] == HOURS  # every joule, split


def test_requests_methods_and_attribution_per_hour(store):
    con, cum, _ = store
    rows = {(e, h): (m, r, a) for e, h, m, r, a in con.execute(
        "SELECT engine, hour_utc, methods, requests, attribution FROM stg_inference_engine_hourly").fetchall()}
    assert len(rows) == 2 * HOURS
    assert sum(r for (e, _), (_, r, _) in rows.items() if e == "vllm") == pytest.approx(cum["r"], rel=1e-9)
    assert rows[("tgi", T0)] == ("phase_time", 0.0, "phase_time: mixed_forward_as_prefill (chunked prefill true)")
    assert rows[("vllm", T0)][0] == "token_fit" and rows[("vllm", T0)][2] == "token_fit"


def test_the_inference_only_series_are_kept_but_are_not_telemetry_rows():
    text = ('wattfleet_inference_requests_total{node="n1",engine="vllm",model="m"} 5\n'
            'wattfleet_inference_engine_gpu_info{node="n1",engine="vllm",model="m",gpu="0"} 1\n')
    assert {name for name, _, _ in parse_exposition(text)} == {catalog.INFERENCE_REQUESTS.name,
                                                               catalog.INFERENCE_ENGINE_GPUS.name}
    con = open_store(":memory:")
    for m in range(0, 61, 10):
        con.execute("INSERT INTO emb_sample VALUES (?, 't', ?, ?, ?)",
                    [T0 + timedelta(minutes=m), catalog.INFERENCE_REQUESTS.name, json.dumps(VLLM), float(m)])
    tel = EmbeddedSource(con).fetch(T0, T0 + timedelta(hours=1))
    assert tel.inference == [] and tel.energy == []
