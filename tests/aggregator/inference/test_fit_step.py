"""The aggregator's inference step: token fit, requests and methods from a real Prometheus, into the report.

History is backfilled with promtool (one sample a minute for three whole hours) from a synthetic truth:
a vLLM engine on two GPUs whose energy is idle W x s + a x prefill tokens + b x decode tokens with 1% noise
and an independent prefill/decode mix (the fit must recover a, b and idle within 5%); an SGLang engine that
only ever decodes (the fit must decline, visibly); and a TGI engine with measured phase_time energy (never
fitted, never counted twice).

Prompt tokens by source (issue 14, in the contract's format until the exporter publishes them): a second
vLLM engine with a prefix cache whose hit rate drifts between 0 and 90%, whose cached tokens cost C each
(the attention over the cached prefix); TGI publishes its prompt tokens as ``unsplit``; the SGLang engine
publishes no prompt-token series at all (an exporter older than the split).
"""

from __future__ import annotations

import csv
import math
import random
import subprocess
import textwrap
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from fixtures.agg.backfill import whole_hours_ago
from promserver import PROMTOOL, PrometheusServer, have_prometheus
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.inference.derived import JOULES_PER_KWH
from wattfleet.aggregator.inference.fit_step import DEFAULT_STEP_SECONDS, run_inference_step, supports
from wattfleet.aggregator.ingest.prometheus import PrometheusSource
from wattfleet.aggregator.ingest.run import ingest
from wattfleet.aggregator.ingest.telemetry import TelemetrySourceError
from wattfleet.aggregator.outputs.report import write_report
from wattfleet.aggregator.store.database import LATEST_VERSION, open_store, schema_version
from wattfleet.aggregator.store.rows import one_row
from wattfleet.core import catalog

H0 = whole_hours_ago(4).replace(tzinfo=None)
HOURS = 3
MINUTES = HOURS * 60
N = dict(cluster="c1", site="lab")
IDLE_W, A, B = 150.0, 0.05, 0.4          # vLLM truth: W, J/prefill token, J/decode token
SG_IDLE_W, SG_B = 100.0, 0.3             # SGLang truth (decode only)
TGI_W = {"prefill": 20.0, "decode": 60.0, "idle": 20.0}
C = 0.004                                # J per cached prompt token of the prefix-cache engine
INTENSITY = 200.0
PUE = 1.2


def _truth() -> dict[str, list[float]]:
    """Per-minute increments, deterministic."""
    rng = random.Random(7)
    out: dict[str, list[float]] = {k: [] for k in ("p", "d", "e", "r", "sg_d", "sg_e", "sg_r")}
    for _ in range(MINUTES + 10):
        p, d = rng.uniform(0, 60000), rng.uniform(0, 6000)
        out["p"].append(p)
        out["d"].append(d)
        out["e"].append((IDLE_W * 60 + A * p + B * d) * (1 + rng.gauss(0, 0.01)))
        out["r"].append(d / 200)
        sd = rng.uniform(0, 5000)
        out["sg_d"].append(sd)
        out["sg_e"].append((SG_IDLE_W * 60 + SG_B * sd) * (1 + rng.gauss(0, 0.01)))
        out["sg_r"].append(sd / 100)
    return out


def _cache_truth() -> dict[str, list[float]]:
    """Per-minute increments of the prefix-cache engine: computed, cached and decode tokens, energy, requests."""
    rng = random.Random(11)
    out: dict[str, list[float]] = {k: [] for k in ("p", "c", "d", "e", "r")}
    for i in range(MINUTES + 10):
        prompt, d = rng.uniform(0, 60000), rng.uniform(0, 6000)
        cached = prompt * 0.45 * (1 + math.sin(i / 15))
        out["p"].append(prompt - cached)
        out["c"].append(cached)
        out["d"].append(d)
        out["e"].append((IDLE_W * 60 + A * (prompt - cached) + C * cached + B * d) * (1 + rng.gauss(0, 0.01)))
        out["r"].append(d / 200)
    return out


TRUTH = _truth()
CACHE = _cache_truth()
FIRST = H0 - timedelta(minutes=5)  # samples from 5 min before the window to 5 min after


def _minute_index(t: datetime) -> int:
    return int((t - FIRST).total_seconds() // 60)


def openmetrics() -> str:
    """Cumulative counters, one sample a minute; increments of minute i land at sample i+1."""
    series: list[tuple[catalog.Metric, dict[str, str], list[float]]] = []
    zeros = [0.0] * (MINUTES + 10)
    vllm = dict(engine="vllm", model="llama-3-8b")
    sg = dict(engine="sglang", model="qwen-7b")
    tgi = dict(engine="tgi", model="bloom-560m")
    unmapped = dict(engine="sglang", model="phi-3")
    cache = dict(engine="vllm", model="llama-3-70b")
    board = dict(gpu_model="NVIDIA H100", method="measured", source="nvml")
    gpu = catalog.GPU_ENERGY
    series += [(gpu, dict(node="n1", gpu="0", uuid="GPU-0", **board), [0.6 * e for e in TRUTH["e"]]),
               (gpu, dict(node="n1", gpu="1", uuid="GPU-1", **board), [0.4 * e for e in TRUTH["e"]]),
               (gpu, dict(node="n1", gpu="2", uuid="GPU-2", **board), [60.0 * sum(TGI_W.values())] * (MINUTES + 10)),
               (gpu, dict(node="n2", gpu="0", uuid="GPU-3", **board), TRUTH["sg_e"]),
               (gpu, dict(node="n3", gpu="0", uuid="GPU-4", **board), CACHE["e"])]
    prompt = catalog.INFERENCE_PROMPT_TOKENS
    tok, req, pe = catalog.INFERENCE_TOKENS, catalog.INFERENCE_REQUESTS, catalog.INFERENCE_PHASE_ENERGY
    series += [(tok, dict(node="n1", phase="prefill", **vllm), TRUTH["p"]),
               (tok, dict(node="n1", phase="decode", **vllm), TRUTH["d"]),
               (req, dict(node="n1", **vllm), TRUTH["r"]),
               (tok, dict(node="n2", phase="prefill", **sg), zeros),   # only ever decodes
               (tok, dict(node="n2", phase="decode", **sg), TRUTH["sg_d"]),
               (req, dict(node="n2", **sg), TRUTH["sg_r"]),
               (tok, dict(node="n2", phase="prefill", **unmapped), TRUTH["p"]),   # no GPU mapping
               (tok, dict(node="n2", phase="decode", **unmapped), TRUTH["d"]),
               (tok, dict(node="n1", phase="prefill", **tgi), [6000.0] * (MINUTES + 10)),
               (tok, dict(node="n1", phase="decode", **tgi), [600.0] * (MINUTES + 10)),
               (req, dict(node="n1", **tgi), [3.0] * (MINUTES + 10)),
               (prompt, dict(node="n1", source="unsplit", **tgi), [6000.0] * (MINUTES + 10)),
               (tok, dict(node="n3", phase="prefill", **cache), CACHE["p"]),   # the computed prompt tokens
               (tok, dict(node="n3", phase="decode", **cache), CACHE["d"]),
               (req, dict(node="n3", **cache), CACHE["r"]),
               (prompt, dict(node="n3", source="computed", **cache), CACHE["p"]),
               (prompt, dict(node="n3", source="cached", **cache), CACHE["c"]),
               (prompt, dict(node="n3", source="transferred", **cache), zeros),
               (prompt, dict(node="n3", source="guessed", **cache), CACHE["c"])]   # not a contract source
    series += [(pe, dict(node="n1", phase=ph, method=catalog.PHASE_METHOD_TIME, **tgi), [60.0 * w] * (MINUTES + 10))
               for ph, w in TGI_W.items()]
    lines = []
    for name in dict.fromkeys(m.name for m, _, _ in series):
        lines.append(f"# TYPE {name} counter")
        for metric, labels, incs in series:
            if metric.name != name:
                continue
            text = ",".join(f'{k}="{v}"' for k, v in sorted({**labels, **N}.items()))
            value = 1000.0
            for i in range(MINUTES + 11):
                if i:
                    value += incs[i - 1]
                lines.append(f"{metric.series}{{{text}}} {value!r} {_unix(FIRST + timedelta(minutes=i))}")
    info = catalog.INFERENCE_ENGINE_GPUS
    lines.append(f"# TYPE {info.series} gauge")
    mapping = (("n1", vllm, ("0", "1")), ("n2", sg, ("0",)), ("n1", tgi, ("2",)), ("n3", cache, ("0",)))
    for node, labels, gpus in mapping:
        for g in gpus:
            text = ",".join(f'{k}="{v}"' for k, v in sorted({**labels, **N, "node": node, "gpu": g}.items()))
            for i in range(MINUTES + 11):
                lines.append(f"{info.series}{{{text}}} 1 {_unix(FIRST + timedelta(minutes=i))}")
    attribution = catalog.INFERENCE_ATTRIBUTION   # as the exporter states it (exporter/inference/sensor.py)
    lines.append(f"# TYPE {attribution.series} gauge")
    for node, labels, stated in (
            ("n1", tgi, dict(method="phase_time", chunked_prefill="true", assumption="mixed_forward_as_prefill")),
            ("n1", vllm, dict(method="token_fit", chunked_prefill="unknown", assumption="token_fit"))):
        text = ",".join(f'{k}="{v}"' for k, v in sorted({**labels, **N, "node": node, **stated}.items()))
        for i in range(MINUTES + 11):
            lines.append(f"{attribution.series}{{{text}}} 1 {_unix(FIRST + timedelta(minutes=i))}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _unix(t: datetime) -> int:
    from datetime import timezone
    return int(t.replace(tzinfo=timezone.utc).timestamp())


def _minutes_of_hour(h: int) -> range:
    """Increments (indices into TRUTH) that end inside hour h of the window: (H0+h, H0+h+1h]."""
    start = _minute_index(H0 + timedelta(hours=h))
    return range(start, start + 60)


CONFIG = textwrap.dedent(f"""\
    version: 1
    sites:
      - name: lab
        zone: TEST
        grid: {{source: static, grams_per_kwh: {INTENSITY}}}
        pue: {PUE}
        wue_liters_per_kwh: 1.0
        nodes: ["n*"]
    """)

pytestmark = [pytest.mark.prometheus,
              pytest.mark.skipif(not have_prometheus(), reason="prometheus/promtool not installed")]


@pytest.fixture(scope="module")
def prom():
    server = PrometheusServer(targets=[])
    data = server.dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    src = server.dir / "backfill.om"
    src.write_text(openmetrics())
    subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(src), str(data)],
                   check=True, capture_output=True, timeout=120)
    with server:
        server.wait_for(catalog.INFERENCE_TOKENS.series + "[10d]", min_results=6, timeout=30)
        yield server


@pytest.fixture
def cfg(tmp_path):
    p = tmp_path / "facility.yaml"
    p.write_text(CONFIG)
    return load_facility(p)


@pytest.fixture(scope="module")
def aggregated(prom, tmp_path_factory):
    """One aggregate run over the three hours, shared by the checks below (the slow part)."""
    tmp = tmp_path_factory.mktemp("agg")
    p = tmp / "facility.yaml"
    p.write_text(CONFIG)
    cfg = load_facility(p)
    db = tmp / "wf.duckdb"
    con = open_store(db)
    source = PrometheusSource(prom.url, backoff_seconds=0.05)
    ingest(con, cfg, source, start=H0, end=H0 + timedelta(hours=HOURS))
    return SimpleNamespace(con=con, cfg=cfg, db=db, source=source)


def fits(con) -> dict[str, dict]:
    cur = con.execute("SELECT * FROM inference_token_fit ORDER BY engine")
    cols = [d[0] for d in cur.description]
    return {f"{r[cols.index('engine')]}/{r[cols.index('model')]}": dict(zip(cols, r, strict=True))
            for r in cur.fetchall()}


def test_fit_recovers_truth_within_5_percent(aggregated):
    con = aggregated.con
    f = fits(con)
    assert set(f) == {"vllm/llama-3-8b", "vllm/llama-3-70b", "sglang/phi-3", "sglang/qwen-7b"}  # tgi: measured
    v = f["vllm/llama-3-8b"]
    assert v["status"] == "fitted" and v["reason"] == ""
    assert v["joules_per_prefill_token"] == pytest.approx(A, rel=0.05)
    assert v["joules_per_decode_token"] == pytest.approx(B, rel=0.05)
    assert v["idle_watts"] == pytest.approx(IDLE_W, rel=0.05)
    # the fit reads 24 h back: the history starts 5 min before H0, so two more intervals
    assert v["n_intervals"] == MINUTES * 60 / DEFAULT_STEP_SECONDS + 2
    assert v["r_squared"] > 0.9 and v["condition_number"] < 100
    end = H0 + timedelta(hours=HOURS)
    assert (v["window_start"], v["window_end"], v["step_seconds"]) == \
        (end - timedelta(hours=24), end, DEFAULT_STEP_SECONDS)


def test_short_rerun_fits_with_context_and_writes_only_its_hours(aggregated):
    con, source = aggregated.con, aggregated.source
    end = H0 + timedelta(hours=HOURS)
    q = ("SELECT hour_utc, phase, energy_joules FROM stg_inference_hourly WHERE source = 'prometheus/token_fit' "
         "ORDER BY ALL")
    before = con.execute(q).fetchall()
    res = run_inference_step(con, source, end - timedelta(hours=1), end)  # an hourly cron run
    v = next(s for s in res.summaries if s["model"] == "llama-3-8b")
    assert v["status"] == "fitted" and v["n_intervals"] > 60  # all of the history, not one hour
    after = con.execute(q).fetchall()
    assert [r[:2] for r in after] == [r[:2] for r in before]
    assert sum(r[2] for r in after) == pytest.approx(sum(r[2] for r in before), rel=1e-9)


def test_declined_when_only_one_phase_is_active(aggregated):
    s = fits(aggregated.con)["sglang/qwen-7b"]
    assert s["status"] == "declined" and "prefill active in only 0" in s["reason"]
    assert s["joules_per_prefill_token"] is None
    n = one_row(aggregated.con, "SELECT count(*) FROM stg_inference_hourly WHERE engine = 'sglang' "
                                "AND source LIKE '%/token_fit'")[0]
    assert n == 0  # no estimate, no attributed energy


def test_engine_without_gpu_mapping_is_declined_not_dropped(aggregated):
    u = fits(aggregated.con)["sglang/phi-3"]
    assert u["status"] == "declined" and "GPU mapping" in u["reason"] and u["n_intervals"] == 0


def test_fitted_energy_adds_up_per_hour_and_tokens_are_not_duplicated(aggregated):
    con = aggregated.con
    for h in range(HOURS):
        hour = H0 + timedelta(hours=h)
        joules, tokens = one_row(
            con, "SELECT sum(energy_joules), sum(tokens) FROM stg_inference_hourly WHERE model = 'llama-3-8b' "
            "AND source = 'prometheus/token_fit' AND hour_utc = ?", [hour])
        assert joules == pytest.approx(sum(TRUTH["e"][i] for i in _minutes_of_hour(h)), rel=1e-9)
        assert tokens == 0
        staged = dict(con.execute("SELECT phase, sum(tokens) FROM stg_inference_hourly WHERE model = 'llama-3-8b' "
                                  "AND hour_utc = ? GROUP BY phase", [hour]).fetchall())
        assert staged["prefill"] == pytest.approx(sum(TRUTH["p"][i] for i in _minutes_of_hour(h)), rel=1e-9)
        assert staged["decode"] == pytest.approx(sum(TRUTH["d"][i] for i in _minutes_of_hour(h)), rel=1e-9)


def test_rollup_per_token_includes_fit_and_measured_engine_counted_once(aggregated):
    con = aggregated.con
    rows = {(e, ph): (jpt, kwh) for e, ph, jpt, kwh in con.execute(
        "SELECT engine, phase, it_joules_per_token, it_kwh FROM rollup_inference_per_token "
        "WHERE period = 'month' AND model <> 'llama-3-70b'").fetchall()}
    assert rows[("sglang", "decode")] == (None, 0)  # declined: tokens, no energy, no J/token
    assert rows[("vllm", "prefill")][0] == pytest.approx(A, rel=0.05)
    assert rows[("vllm", "decode")][0] == pytest.approx(B, rel=0.05)
    for phase, watts in TGI_W.items():  # phase_time energy exactly once, nothing fitted on top
        assert rows[("tgi", phase)][1] * JOULES_PER_KWH == pytest.approx(watts * 3600 * HOURS, rel=1e-9)


def test_prompt_tokens_by_source_are_staged_and_rolled_up(aggregated):
    con = aggregated.con
    staged = {(m, s, h): t for m, s, h, t in con.execute(
        "SELECT model, prompt_source, hour_utc, tokens FROM stg_inference_prompt_hourly").fetchall()}
    for h in range(HOURS):
        hour = H0 + timedelta(hours=h)
        assert staged[("llama-3-70b", "computed", hour)] == pytest.approx(
            sum(CACHE["p"][i] for i in _minutes_of_hour(h)), rel=1e-9)
        assert staged[("llama-3-70b", "cached", hour)] == pytest.approx(
            sum(CACHE["c"][i] for i in _minutes_of_hour(h)), rel=1e-9)
        assert staged[("llama-3-70b", "transferred", hour)] == 0.0
        assert staged[("bloom-560m", "unsplit", hour)] == pytest.approx(6000.0 * 60)
    assert not any(m == "qwen-7b" for m, _, _ in staged)
    assert {s for _, s, _ in staged} == {"computed", "cached", "transferred", "unsplit"}  # "guessed" never kept
    month = {m: r for m, *r in con.execute(
        "SELECT model, computed_tokens, cached_tokens, unsplit_tokens, split_node_hours, unsplit_node_hours "
        "FROM rollup_inference_prompt WHERE period = 'month'").fetchall()}
    idx = [i for h in range(HOURS) for i in _minutes_of_hour(h)]
    assert month["llama-3-70b"][:2] == [pytest.approx(sum(CACHE[k][i] for i in idx), rel=1e-9) for k in ("p", "c")]
    assert month["llama-3-70b"][3:] == [HOURS, 0] and month["bloom-560m"][2:] == [6000.0 * 60 * HOURS, 0, HOURS]


def test_cached_tokens_are_their_own_term_when_the_hit_rate_drifts(aggregated):
    f = fits(aggregated.con)["vllm/llama-3-70b"]
    assert f["status"] == "fitted" and f["cached_term"] == "fitted"
    assert f["joules_per_prefill_token"] == pytest.approx(A, rel=0.05)
    assert f["joules_per_cached_token"] == pytest.approx(C, rel=0.3)
    assert fits(aggregated.con)["vllm/llama-3-8b"]["cached_term"] == "no cached tokens"


def test_requests_and_methods_staged_per_hour(aggregated):
    con = aggregated.con
    got = {(e, h): (m, r) for e, h, m, r in con.execute(
        "SELECT engine, hour_utc, methods, requests FROM stg_inference_engine_hourly "
        "WHERE model <> 'llama-3-70b'").fetchall()}
    attributions = {(e, h): a for e, h, a in con.execute(
        "SELECT engine, hour_utc, attribution FROM stg_inference_engine_hourly WHERE model <> 'llama-3-70b'"
    ).fetchall()}
    for h in range(HOURS):
        hour = H0 + timedelta(hours=h)
        assert got[("vllm", hour)][0] == catalog.PHASE_METHOD_TOKEN_FIT
        assert got[("vllm", hour)][1] == pytest.approx(sum(TRUTH["r"][i] for i in _minutes_of_hour(h)), rel=1e-9)
        assert got[("tgi", hour)] == (catalog.PHASE_METHOD_TIME, pytest.approx(180.0))
        assert attributions[("tgi", hour)] == "phase_time: mixed_forward_as_prefill (chunked prefill true)"
        assert got[("sglang", hour)][0] is None


def test_report_inference_engines(aggregated, tmp_path):
    cfg, db = aggregated.cfg, aggregated.db
    aggregated.con.close()  # the report opens the file read-only
    month = H0.strftime("%Y-%m")
    if (H0 + timedelta(hours=HOURS - 1)).month != H0.month:
        pytest.skip("window crosses a month boundary")
    try:
        write_report(db, month, tmp_path, cfg)
    finally:
        aggregated.con = open_store(db)
    with open(tmp_path / "inference_engines.csv", newline="") as fh:
        all_rows = list(csv.DictReader(fh))
    rows = {r["engine"]: r for r in all_rows if r["model"] not in ("phi-3", "llama-3-70b")}
    v = rows["vllm"]
    assert v["method"] == "token_fit" and v["fit_status"] == "fitted" and float(v["fit_r_squared"]) > 0.9
    assert float(v["joules_per_prefill_token"]) == pytest.approx(A, rel=0.05)
    assert float(v["joules_per_decode_token"]) == pytest.approx(B, rel=0.05)
    idx = [i for h in range(HOURS) for i in _minutes_of_hour(h)]
    energy, reqs = sum(TRUTH["e"][i] for i in idx), sum(TRUTH["r"][i] for i in idx)
    tokens = sum(TRUTH["p"][i] + TRUTH["d"][i] for i in idx)
    assert float(v["joules_per_request"]) == pytest.approx(energy / reqs, rel=1e-6)
    assert float(v["tokens_per_joule"]) == pytest.approx(tokens / energy, rel=1e-6)
    grams = energy / JOULES_PER_KWH * PUE * INTENSITY
    assert float(v["scope2_location_g_per_1k_tokens"]) == pytest.approx(grams * 1000 / tokens, rel=1e-6)
    s = rows["sglang"]
    assert s["fit_status"] == "declined" and "prefill" in s["fit_reason"]
    assert s["joules_per_decode_token"] == "" and s["hours_without_phase_energy"] == str(HOURS)
    t = rows["tgi"]
    assert t["method"] == "phase_time" and t["fit_status"] == ""
    assert t["phase_attribution"] == "phase_time: mixed_forward_as_prefill (chunked prefill true)"
    assert v["phase_attribution"] == "token_fit" and s["phase_attribution"] == ""  # SGLang: nothing stated
    assert float(t["joules_per_prefill_token"]) == pytest.approx(TGI_W["prefill"] * 60 / 6000)
    assert float(t["joules_per_request"]) == pytest.approx(sum(TGI_W.values()) * 60 / 3)
    with open(tmp_path / "inference.csv", newline="") as fh:
        per_phase = {(r["engine"], r["phase"]): r for r in csv.DictReader(fh) if r["model"] != "llama-3-70b"}
    assert per_phase[("sglang", "decode")]["it_joules_per_token"] == ""
    assert float(per_phase[("vllm", "decode")]["it_joules_per_token"]) == pytest.approx(B, rel=0.05)
    # prompt tokens by source: split engine, unsplit engine (TGI), engine without the series (SGLang)
    c = next(r for r in all_rows if r["model"] == "llama-3-70b")
    computed, cached = (sum(CACHE[k][i] for i in idx) for k in ("p", "c"))
    assert c["prompt_split"] == "by engine" and c["fit_cached_tokens"] == "fitted"
    assert float(c["cache_hit_ratio"]) == pytest.approx(cached / (computed + cached), rel=1e-9)
    assert float(c["transferred_prompt_ratio"]) == 0.0
    truth = (A * computed + C * cached) / computed   # prefill energy (cached prefix included) per computed token
    assert float(c["joules_per_computed_prefill_token"]) == pytest.approx(truth, rel=0.03)
    assert float(c["joules_per_computed_prefill_token"]) == pytest.approx(float(c["joules_per_prefill_token"]))
    assert t["prompt_split"] == "not split by engine" and t["joules_per_computed_prefill_token"] == ""
    assert t["cache_hit_ratio"] == "" and s["prompt_split"] == "not split by engine"
    md = (tmp_path / "report.md").read_text()
    assert "## Inference per engine and model" in md and "declined" in md and "not split by engine" in md
    assert "Inference per engine and model" in (tmp_path / "report.html").read_text()
    assert (tmp_path / "inference_engines.parquet").exists()


def test_rerun_replaces_exactly(aggregated, cfg):
    con, source = aggregated.con, aggregated.source
    before = con.execute("SELECT engine, phase, it_kwh, tokens FROM rollup_inference ORDER BY ALL").fetchall()
    run_inference_step(con, source, H0, H0 + timedelta(hours=HOURS))
    ingest(con, cfg, source, start=H0, end=H0 + timedelta(hours=HOURS))
    assert one_row(con, "SELECT count(*) FROM inference_token_fit")[0] == 4
    after = con.execute("SELECT engine, phase, it_kwh, tokens FROM rollup_inference ORDER BY ALL").fetchall()
    assert after == before


class _GoneMidFit(PrometheusSource):
    """Answers the ingest's queries but fails the token fit's raw range queries."""

    def query_range_step(self, expr: str, start: datetime, end: datetime, step_seconds: float
                         ) -> list[dict[str, Any]]:
        raise TelemetrySourceError("gone mid-fit")


def test_prometheus_down_during_fit_leaves_previous_rows(aggregated):
    con, source = aggregated.con, aggregated.source
    before = con.execute("SELECT * FROM inference_token_fit ORDER BY ALL").fetchall()
    staged = one_row(con, "SELECT count(*), sum(requests) FROM stg_inference_engine_hourly")
    down = PrometheusSource("http://127.0.0.1:1", retries=0)
    with pytest.raises(TelemetrySourceError):
        run_inference_step(con, down, H0, H0 + timedelta(hours=HOURS))
    broken = _GoneMidFit(source.url, retries=0)
    with pytest.raises(TelemetrySourceError, match="mid-fit"):
        run_inference_step(con, broken, H0, H0 + timedelta(hours=HOURS))
    assert con.execute("SELECT * FROM inference_token_fit ORDER BY ALL").fetchall() == before
    assert one_row(con, "SELECT count(*), sum(requests) FROM stg_inference_engine_hourly") == staged


def test_step_must_divide_an_hour(aggregated):
    con, source = aggregated.con, aggregated.source
    with pytest.raises(ValueError, match="divide an hour"):
        run_inference_step(con, source, H0, H0 + timedelta(hours=1), step_seconds=7)


def test_only_promql_sources_are_fitted():
    from wattfleet.aggregator.ingest.embedded import EmbeddedSource
    assert not supports(EmbeddedSource) and supports(PrometheusSource("http://127.0.0.1:1"))


def test_v4_file_upgrades_to_token_fit_tables(tmp_path):
    path = tmp_path / "v4.duckdb"
    con = open_store(path, migrate_to=4)
    con.execute("INSERT INTO stg_inference_hourly VALUES ('2026-10-01 00:00', 'n', 'c', 's', 'vllm', 'm', "
                "'decode', 0, 10, 'prometheus')")
    con.close()
    con = open_store(path)
    assert schema_version(con) == LATEST_VERSION >= 5
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"stg_inference_engine_hourly", "inference_token_fit"} <= tables
    assert one_row(con, "SELECT sum(tokens) FROM stg_inference_hourly")[0] == 10
