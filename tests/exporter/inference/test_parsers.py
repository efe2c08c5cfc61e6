"""Each engine's real exposition format normalizes to tokens by phase, requests, phase time and queue gauges."""

from __future__ import annotations

from string import Template

import pytest

import paths
from wattfleet.core import catalog
from wattfleet.exporter.inference.parsers import (
    BUSY,
    MARKED_ENERGY,
    REQUEST_SECONDS,
    REQUESTS,
    TOKENS,
    ParseError,
    parse_sglang,
    parse_tgi,
    parse_vllm,
)

FIXTURES = paths.FIXTURES / "inference"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


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
    assert m.counters[(TOKENS, "prefill")] == 8.128902e+06 + 1000
    assert m.counters[(TOKENS, "decode")] == 7.557572e+06 + 500
    assert m.counters[(REQUESTS, "")] == 120 + 21 + 7
    assert m.counters[(REQUEST_SECONDS, "prefill")] == 38.5
    assert m.counters[(REQUEST_SECONDS, "decode")] == 900.25
    assert not any(k[0] == BUSY for k in m.counters)  # per-request times are not engine time
    assert (m.running, m.waiting) == (8.0, 2.0)
    assert m.kv_cache_ratio == 0.42  # the fuller rank, a 0..1 fraction despite "perc"


def test_vllm_v0_reads_gpu_cache_usage() -> None:
    m = parse_vllm(page("vllm_v0.txt", prompt=100, gen=40, requests=3)).models["mistralai/Mistral-7B-Instruct-v0.3"]
    assert m.counters[(TOKENS, "prefill")] == 100 and m.counters[(TOKENS, "decode")] == 40
    assert m.counters[(REQUESTS, "")] == 3
    assert m.kv_cache_ratio == 0.31 and m.running == 4 and m.waiting == 1


def test_sglang() -> None:
    m = parse_sglang(page("sglang.txt", prompt=8.128902e+06, gen=7.557572e+06, requests=1400)).models[
        "Qwen/Qwen2.5-7B-Instruct"]
    assert m.counters == {(TOKENS, "prefill"): 8.128902e+06, (TOKENS, "decode"): 7.557572e+06, (REQUESTS, ""): 1400}
    assert (m.running, m.waiting, m.kv_cache_ratio) == (162, 26, 0.28)


def test_sglang_old_releases_label_the_model_name() -> None:
    text = ('sglang:prompt_tokens_total{name="google/gemma-2-9b-it"} 5\n'
            'sglang:num_queue_reqs{name="google/gemma-2-9b-it"} 1\n')
    assert parse_sglang(text).models["google/gemma-2-9b-it"].counters[(TOKENS, "prefill")] == 5


def test_tgi_counters_without_total_and_phase_time_by_method() -> None:
    reading = parse_tgi(page("tgi.txt", **TGI))
    assert reading.start_time is None and reading.steps == 100 + 9100  # tgi_batch_inference_count, both methods
    m = reading.models["unknown"]
    assert m.counters[(TOKENS, "prefill")] == 51234 and m.counters[(TOKENS, "decode")] == 20480
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
