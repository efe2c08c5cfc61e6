"""Each engine's real exposition format normalizes to tokens by phase, requests, phase time and queue gauges."""

from __future__ import annotations

from string import Template

import pytest

import paths
from wattfleet.core import catalog
from wattfleet.exporter.inference.parsers import (
    BUSY,
    MARKED_ENERGY,
    PREFILL_SOURCES,
    PROMPT,
    REQUEST_SECONDS,
    REQUESTS,
    TOKENS,
    ModelReading,
    ParseError,
    parse_sglang,
    parse_tgi,
    parse_vllm,
)

FIXTURES = paths.FIXTURES / "inference"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def prefill(m: ModelReading) -> float | None:
    """Prefill tokens as the exporter publishes them: the prompt tokens computed here (all where unsplit)."""
    found = [m.counters[(PROMPT, s)] for s in PREFILL_SOURCES if (PROMPT, s) in m.counters]
    return found[0] if found else None


def page(name: str, **values: float) -> str:
    return Template((FIXTURES / name).read_text()).substitute({k: repr(float(v)) for k, v in values.items()})


VLLM_V1 = dict(start=1.75e9, prompt0=8.128902e+06, prompt1=1000, gen0=7.557572e+06, gen1=500, stop0=120, length0=21,
               stop1=7, prefill_s0=38.5, decode_s0=900.25)
TGI = dict(requests_in=130, requests=128, prefill_calls=100, decode_calls=9100, prefill_s=12.5, decode_s=140.75,
           prompt=51234, gen=20480)


def test_vllm_v1_sums_data_parallel_ranks_and_finish_reasons() -> None:
    reading = parse_vllm(page("vllm_v1.txt", **VLLM_V1))
    assert reading.start_time == 1.75e9
    assert reading.steps == 10422  # vllm:iteration_tokens_total_count: engine steps, the restart witness
    assert set(reading.models) == {LLAMA}
    m = reading.models[LLAMA]
    assert prefill(m) == 8.128902e+06 + 1000
    assert m.counters[(TOKENS, "decode")] == 7.557572e+06 + 500
    assert m.counters[(REQUESTS, "")] == 120 + 21 + 7
    assert m.counters[(REQUEST_SECONDS, "prefill")] == 38.5
    assert m.counters[(REQUEST_SECONDS, "decode")] == 900.25
    assert not any(k[0] == BUSY for k in m.counters)  # per-request times are not engine time
    assert (m.running, m.waiting) == (8.0, 2.0)
    assert m.kv_cache_ratio == 0.42  # the fuller rank, a 0..1 fraction despite "perc"


def test_vllm_v0_reads_gpu_cache_usage() -> None:
    m = parse_vllm(page("vllm_v0.txt", prompt=100, gen=40, requests=3)).models["mistralai/Mistral-7B-Instruct-v0.3"]
    assert prefill(m) == 100 and m.counters[(TOKENS, "decode")] == 40
    assert m.counters[(REQUESTS, "")] == 3
    assert m.kv_cache_ratio == 0.31 and m.running == 4 and m.waiting == 1


def test_sglang() -> None:
    m = parse_sglang(page("sglang.txt", prompt=8.128902e+06, gen=7.557572e+06, requests=1400)).models[
        "Qwen/Qwen2.5-7B-Instruct"]
    assert m.counters == {(PROMPT, "unsplit"): 8.128902e+06, (TOKENS, "decode"): 7.557572e+06, (REQUESTS, ""): 1400}
    assert (m.running, m.waiting, m.kv_cache_ratio) == (162, 26, 0.28)


def test_sglang_old_releases_label_the_model_name() -> None:
    text = ('sglang:prompt_tokens_total{name="google/gemma-2-9b-it"} 5\n'
            'sglang:num_queue_reqs{name="google/gemma-2-9b-it"} 1\n')
    assert prefill(parse_sglang(text).models["google/gemma-2-9b-it"]) == 5


def test_tgi_counters_without_total_and_phase_time_by_method() -> None:
    reading = parse_tgi(page("tgi.txt", **TGI))
    assert reading.start_time is None and reading.steps == 100 + 9100  # tgi_batch_inference_count, both methods
    m = reading.models["unknown"]
    assert prefill(m) == 51234 and m.counters[(TOKENS, "decode")] == 20480
    assert m.counters[(REQUESTS, "")] == 128          # tgi_request_success preferred over tgi_request_count
    assert m.counters[(BUSY, "prefill")] == 12.5 and m.counters[(BUSY, "decode")] == 140.75
    assert (m.running, m.waiting, m.kv_cache_ratio) == (12, 3, None)


def test_tgi_falls_back_to_request_count_and_answers_before_first_request() -> None:
    m = parse_tgi("# TYPE tgi_request_count counter\ntgi_request_count 4\ntgi_queue_size 0\n").models["unknown"]
    assert m.counters == {(REQUESTS, ""): 4}
    assert parse_tgi("tgi_queue_size 0\n").models["unknown"].waiting == 0


def test_marked_phase_energy_on_an_engine_page_is_passed_through() -> None:
    extra = (f'{catalog.INFERENCE_PHASE_ENERGY.series}{{phase="prefill",method="marked"}} 12.5\n'
             f'{catalog.INFERENCE_PHASE_ENERGY.series}{{phase="idle",method="marked"}} 3\n'
             f'{catalog.INFERENCE_PHASE_BUSY.series}{{phase="prefill",method="marked"}} 0.25\n')
    m = parse_vllm(page("vllm_v0.txt", prompt=1, gen=1, requests=1) + extra).models[
        "mistralai/Mistral-7B-Instruct-v0.3"]
    assert m.counters[(MARKED_ENERGY, "prefill")] == 12.5 and m.counters[(MARKED_ENERGY, "idle")] == 3
    assert m.counters[(BUSY, "prefill")] == 0.25


@pytest.mark.parametrize("text, reason", [
    ("<html><body>502 Bad Gateway</body></html>", "parse_error"),
    ('vllm:prompt_tokens_total{model_name="x" 1\n', "parse_error"),
    ("\x00\x01\x02 binary", "parse_error"),
    ("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1.5\n", "no_engine_metrics"),
    ("", "no_engine_metrics"),
])
def test_garbage_is_a_parse_error_with_a_reason(text: str, reason: str) -> None:
    for parse in (parse_vllm, parse_sglang, parse_tgi):
        with pytest.raises(ParseError) as err:
            parse(text)
        assert err.value.reason == reason


def test_an_engine_page_for_the_wrong_engine_is_rejected() -> None:
    with pytest.raises(ParseError, match="no tgi_ metrics"):
        parse_tgi(page("vllm_v1.txt", **VLLM_V1))


def test_non_finite_values_are_ignored_not_propagated() -> None:
    text = ('vllm:prompt_tokens_total{model_name="m"} +Inf\nvllm:generation_tokens_total{model_name="m"} NaN\n'
            'vllm:request_success_total{model_name="m",finished_reason="stop"} 3\n'
            'vllm:num_requests_running{model_name="m"} -Inf\n')
    m = parse_vllm(text).models["m"]
    assert m.counters == {(REQUESTS, ""): 3} and m.running is None


def test_invalid_counter_samples_are_counted_and_leave_the_whole_counter_out() -> None:
    """One bad rank of a summed counter would make the sum dip: the counter is left out of this reading."""
    text = ('vllm:prompt_tokens_total{engine="0",model_name="m"} 100\n'
            'vllm:prompt_tokens_total{engine="1",model_name="m"} -4\n'
            'vllm:generation_tokens_total{engine="0",model_name="m"} NaN\n'
            'vllm:request_success_total{model_name="m",finished_reason="stop"} 3\n'
            'vllm:num_requests_running{model_name="m"} +Inf\n'
            'vllm:iteration_tokens_total_count{engine="0",model_name="m"} 1e308\n'
            'vllm:iteration_tokens_total_count{engine="1",model_name="m"} 1e308\n'
            'process_start_time_seconds NaN\n')
    reading = parse_vllm(text)
    assert reading.models["m"].counters == {(REQUESTS, ""): 3}
    assert reading.rejected == {"negative": 1, "not_finite": 3}
    assert reading.start_time is None and reading.steps is None  # 2e308 overflows: no step count


VLLM_SPLIT = dict(start=1.76e9, compute0=3.9e6, hit0=5.2e6, ext0=0, compute1=1.9e6, hit1=2.5e6, ext1=1000,
                  prompt0=9.1e6, prompt1=4.401e6, cached0=5.2e6, cached1=2.501e6, gen0=2.0e6, gen1=1.0e6, stop0=300,
                  stop1=150, steps0=80000, steps1=41000)


def test_vllm_splits_prompt_tokens_by_source_summed_over_data_parallel_engines() -> None:
    reading = parse_vllm(page("vllm_split.txt", **VLLM_SPLIT))
    m = reading.models[LLAMA]
    assert m.counters[(PROMPT, "computed")] == 3.9e6 + 1.9e6
    assert m.counters[(PROMPT, "cached")] == 5.2e6 + 2.5e6
    assert m.counters[(PROMPT, "transferred")] == 1000
    assert (PROMPT, "unsplit") not in m.counters
    # prefill = computed only: the cached and transferred tokens cost this engine no prefill compute.
    assert prefill(m) == 3.9e6 + 1.9e6
    # The three sources add up to vllm:prompt_tokens_total, which is not read again (no double count).
    assert sum(m.counters[(PROMPT, s)] for s in ("computed", "cached", "transferred")) == 9.1e6 + 4.401e6
    assert m.counters[(TOKENS, "decode")] == 3.0e6 and m.counters[(REQUESTS, "")] == 450
    assert reading.steps == 80000 + 41000 and not reading.phase_time
    assert (m.running, m.waiting, m.kv_cache_ratio) == (10, 1, 0.61)


def test_vllm_without_the_split_is_unsplit_not_guessed_from_prefix_cache_hits() -> None:
    text = ('vllm:prompt_tokens_total{engine="0",model_name="m"} 100\n'
            'vllm:prefix_cache_queries_total{engine="0",model_name="m"} 100\n'
            'vllm:prefix_cache_hits_total{engine="0",model_name="m"} 60\n')
    m = parse_vllm(text).models["m"]
    assert m.counters[(PROMPT, "unsplit")] == 100 and prefill(m) == 100
    assert not any(k[0] == PROMPT and k[1] != "unsplit" for k in m.counters)


def test_vllm_releases_with_recomputed_tokens_do_not_count_them_as_cached() -> None:
    # Between PR #33290 and #38709 the last token of a fully cached prompt was both local_compute and
    # local_cache_hit; vllm:prompt_tokens_recomputed counted it. 3 prompts of 10 tokens fully cached:
    text = ('vllm:prompt_tokens_by_source_total{engine="0",model_name="m",source="local_compute"} 3\n'
            'vllm:prompt_tokens_by_source_total{engine="0",model_name="m",source="local_cache_hit"} 30\n'
            'vllm:prompt_tokens_by_source_total{engine="0",model_name="m",source="external_kv_transfer"} 0\n'
            'vllm:prompt_tokens_recomputed_total{engine="0",model_name="m"} 3\n'
            'vllm:prompt_tokens_total{engine="0",model_name="m"} 30\n')
    m = parse_vllm(text).models["m"]
    assert (m.counters[(PROMPT, "computed")], m.counters[(PROMPT, "cached")]) == (3, 27)
    assert prefill(m) == 3


SGLANG_RANKS = dict(prompt=1.0e6, cached=0.55e6, gen=3.0e5, requests=900, compute0=300000, hit0=400000,
                    decode0=200000, compute1=150000, hit1=150000, decode1=100000, extend0=120.0, dec0=480.0,
                    extend1=60.0, dec1=250.0)


def test_sglang_counts_tokens_once_per_dp_rank_never_per_tp_rank() -> None:
    reading = parse_sglang(page("sglang_ranks.txt", **SGLANG_RANKS))
    m = reading.models["Qwen/Qwen3-32B"]
    # Both tp ranks publish every scheduler count: one of them is read, the two dp ranks are summed.
    assert m.counters[(PROMPT, "computed")] == 300000 + 150000
    assert m.counters[(PROMPT, "cached")] == 400000 + 150000
    assert prefill(m) == 450000 and m.counters[(TOKENS, "decode")] == 300000
    assert (PROMPT, "unsplit") not in m.counters and (PROMPT, "transferred") not in m.counters
    assert m.counters[(BUSY, "prefill")] == 120.0 + 60.0 and m.counters[(BUSY, "decode")] == 480.0 + 250.0
    assert m.counters[(REQUESTS, "")] == 900
    assert reading.phase_time and reading.lanes == 2 and reading.chunked_prefill is False
    assert (m.running, m.waiting, m.kv_cache_ratio) == (32, 4, 0.44)


def test_sglang_without_realtime_tokens_splits_prompt_by_its_cached_tokens() -> None:
    text = ('sglang:prompt_tokens_total{engine_type="unified",model_name="m"} 1000\n'
            'sglang:cached_tokens_total{engine_type="unified",model_name="m"} 700\n'
            'sglang:generation_tokens_total{engine_type="unified",model_name="m"} 50\n')
    reading = parse_sglang(text)
    m = reading.models["m"]
    assert (m.counters[(PROMPT, "computed")], m.counters[(PROMPT, "cached")]) == (300, 700)
    assert prefill(m) == 300 and m.counters[(TOKENS, "decode")] == 50
    assert not reading.phase_time and reading.chunked_prefill is None


def test_sglang_cached_above_prompt_tokens_leaves_no_split() -> None:
    m = parse_sglang('sglang:prompt_tokens_total{model_name="m"} 10\n'
                     'sglang:cached_tokens_total{model_name="m"} 20\n').models["m"]
    assert not any(k[0] == PROMPT for k in m.counters) and prefill(m) is None


def test_sglang_older_forward_execution_seconds_and_mixed_chunks() -> None:
    reading = parse_sglang(page("sglang_forward_execution.txt", compute=5000, hit=15000, decode=9000, extend=2.0,
                                dec=7.0, mixed=1.5, requests=40))
    m = reading.models["deepseek-ai/DeepSeek-V3"]
    assert m.counters[(BUSY, "prefill")] == 2.0 + 1.5   # mixed forwards are timed as prefill (stated assumption)
    assert m.counters[(BUSY, "decode")] == 7.0
    assert m.counters[(PROMPT, "computed")] == 5000 and m.counters[(PROMPT, "cached")] == 15000
    assert reading.phase_time and reading.lanes == 1 and reading.chunked_prefill is True


def test_sglang_rank_labels_pick_the_lowest_rank_even_when_rank_zero_is_missing() -> None:
    text = ('sglang:realtime_tokens_total{mode="decode",model_name="m",tp_rank="3",pp_rank="1"} 7\n'
            'sglang:realtime_tokens_total{mode="decode",model_name="m",tp_rank="2",pp_rank="1"} 7\n')
    assert parse_sglang(text).models["m"].counters[(TOKENS, "decode")] == 7


TGI_CHUNKED = dict(requests_in=50, requests=48, concat=12, prefill_calls=60, decode_calls=3000, prefill_s=9.0,
                   decode_s=40.0, prompt=70000, gen=9000)


def test_tgi_chunked_prefill_is_recognised_from_the_page() -> None:
    reading = parse_tgi(page("tgi_chunked.txt", **TGI_CHUNKED))
    assert reading.chunked_prefill is True and reading.phase_time
    m = reading.models["unknown"]
    assert m.counters[(PROMPT, "unsplit")] == 70000 and prefill(m) == 70000
    assert parse_tgi(page("tgi.txt", **TGI)).chunked_prefill is None
    assert parse_tgi("tgi_batch_concat{reason=\"wait_exceeded\"} 3\ntgi_queue_size 0\n").chunked_prefill is False


def test_a_bad_source_value_leaves_that_source_out_and_is_counted() -> None:
    text = ('vllm:prompt_tokens_by_source_total{engine="0",model_name="m",source="local_compute"} 10\n'
            'vllm:prompt_tokens_by_source_total{engine="1",model_name="m",source="local_compute"} 5\n'
            'vllm:prompt_tokens_by_source_total{engine="0",model_name="m",source="local_cache_hit"} NaN\n'
            'vllm:prompt_tokens_by_source_total{engine="1",model_name="m",source="local_cache_hit"} 7\n')
    reading = parse_vllm(text)
    m = reading.models["m"]
    # One engine core's value is bad: the source's sum over cores would read as a dip, so it is left out whole.
    assert m.counters[(PROMPT, "computed")] == 15 and (PROMPT, "cached") not in m.counters
    assert reading.rejected == {"not_finite": 1}
