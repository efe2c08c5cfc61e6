"""The engine list: valid files load, every mistake names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from wattfleet.exporter.inference.config import EngineConfig, InferenceConfigError, load_inference_config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "engines.yaml"
    p.write_text(text)
    return p


def test_valid_config(tmp_path: Path) -> None:
    p = write(tmp_path, """\
- engine: vllm
  url: http://127.0.0.1:8000/metrics
  gpus: ["0", "1"]
- engine: tgi
  url: http://127.0.0.1:8080/metrics
  gpus: [2]
  model: bigscience/bloom-560m
  timeout_seconds: 0.25
  chunked_prefill: true
""")
    assert load_inference_config(p) == [
        EngineConfig("vllm", "http://127.0.0.1:8000/metrics", ("0", "1")),
        EngineConfig("tgi", "http://127.0.0.1:8080/metrics", ("2",), "bigscience/bloom-560m", 0.25,
                     chunked_prefill=True),
    ]
    assert load_inference_config(p)[0].endpoint == "127.0.0.1:8000"


def test_engines_key_is_accepted(tmp_path: Path) -> None:
    p = write(tmp_path, "engines:\n  - {engine: sglang, url: 'http://localhost:30000/metrics', gpus: ['0']}\n")
    assert load_inference_config(p)[0].engine == "sglang"


@pytest.mark.parametrize("body, line, needle", [
    ("- engine: llamacpp\n  url: http://h:1/metrics\n  gpus: ['0']\n", 1, "field 'engine' must be one of"),
    ("- engine: vllm\n  url: ftp://h/metrics\n  gpus: ['0']\n", 2, "field 'url' must be an http(s) URL"),
    ("- engine: vllm\n  url: http://h:1/metrics\n  gpus: []\n", 3, "field 'gpus' must be a non-empty list"),
    ("- engine: vllm\n  url: http://h:1/metrics\n  gpus:\n    - '0'\n    - cuda:1\n", 5, "field 'gpus[1]'"),
    ("- engine: vllm\n  url: http://h:1/metrics\n  gpus: ['0']\n  timeout_seconds: -1\n", 4,
     "field 'timeout_seconds'"),
    ("- engine: vllm\n  url: http://h:1/metrics\n  gpus: ['0']\n  gpu: ['1']\n", 4, "unknown field 'gpu'"),
    ("- engine: tgi\n  url: http://h:1/metrics\n  gpus: ['0']\n  chunked_prefill: 'yes'\n", 4,
     "field 'chunked_prefill' must be true or false"),
    ("- engine: vllm\n  url: http://h:1/metrics\n  gpus: ['0']\n- engine: tgi\n  url: http://h:1/metrics\n"
     "  gpus: ['1']\n", 5, "repeats engine 0"),
    ("- engine: vllm\n  url: http://h:1/metrics\n  gpus: ['0', 0]\n", 3, "lists GPU 0 twice"),
    ("- engine: vllm\n  url: [http://h:1/metrics\n", 3, "not valid YAML"),  # YAML reports the stream end
    ("{}\n", 1, "expected a non-empty list of engines"),
])
def test_errors_name_file_line_and_field(tmp_path: Path, body: str, line: int, needle: str) -> None:
    p = write(tmp_path, body)
    with pytest.raises(InferenceConfigError) as err:
        load_inference_config(p)
    message = str(err.value)
    assert f"{p}:{line}" in message, message
    assert needle in message, message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InferenceConfigError, match="cannot read"):
        load_inference_config(tmp_path / "nope.yaml")


def test_gpu_uuids_are_accepted_and_a_gpu_shared_by_two_engines_is_refused(tmp_path: Path) -> None:
    uuid = "GPU-fake-0001-0000-0000-0000-000000000000"
    p = write(tmp_path, f"- {{engine: vllm, url: 'http://h:1/metrics', gpus: ['{uuid}', 0]}}\n")
    assert load_inference_config(p)[0].gpus == (uuid, "0")
    p = write(tmp_path, "- {engine: vllm, url: 'http://h:1/metrics', gpus: [0, 1]}\n"
                        "- {engine: tgi, url: 'http://h:2/metrics', gpus: [2, '1']}\n")
    with pytest.raises(InferenceConfigError, match=rf"{p}:2: engine 1: field 'gpus\[1\]': GPU 1 is already used "
                                                   r"by engine 0"):
        load_inference_config(p)


def test_a_directory_of_drop_in_files_is_one_engine_list(tmp_path: Path) -> None:
    d = tmp_path / "inference.d"
    d.mkdir()
    (d / "b-tgi.yaml").write_text("- {engine: tgi, url: 'http://127.0.0.1:8080/metrics', gpus: [1]}\n")
    (d / "a-vllm.yml").write_text("- {engine: vllm, url: 'http://127.0.0.1:8000/metrics', gpus: [0]}\n")
    (d / "README.txt").write_text("not an engine list\n")
    (d / ".hidden.yaml").write_text("garbage: [\n")
    assert [e.engine for e in load_inference_config(d)] == ["vllm", "tgi"]   # sorted by file name
    (d / "c-clash.yaml").write_text("- {engine: sglang, url: 'http://127.0.0.1:8000/metrics', gpus: [2]}\n"
                                    "- {engine: sglang, url: 'http://127.0.0.1:9000/metrics', gpus: [1]}\n")
    with pytest.raises(InferenceConfigError) as err:
        load_inference_config(d)
    assert f"{d / 'c-clash.yaml'}: engine url 'http://127.0.0.1:8000/metrics' is already listed in " \
           f"{d / 'a-vllm.yml'}" in str(err.value)
    assert "GPU 1 is already used by an engine in" in str(err.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InferenceConfigError, match="holds no"):
        load_inference_config(empty)


def test_local_config_discovery(tmp_path: Path) -> None:
    from wattfleet.exporter.inference.config import ENV_VAR, discover_config_path

    f = tmp_path / "inference.yaml"
    d = tmp_path / "inference.d"
    d.mkdir()
    locations = (str(f), str(d))
    assert discover_config_path({}, locations) is None                 # nothing there: no engines scraped
    (d / "vllm.yaml").write_text("- {engine: vllm, url: 'http://127.0.0.1:8000/metrics', gpus: [0]}\n")
    assert discover_config_path({}, locations) == d
    f.write_text("- {engine: tgi, url: 'http://127.0.0.1:8080/metrics', gpus: [0]}\n")
    assert discover_config_path({}, locations) == f                     # first location wins
    assert discover_config_path({ENV_VAR: str(tmp_path / "x.yaml")}, locations) == tmp_path / "x.yaml"


def test_plausibility_bounds_and_model_limit_are_optional_fields(tmp_path: Path) -> None:
    p = write(tmp_path, """\
- engine: vllm
  url: http://127.0.0.1:8000/metrics
  gpus: ["0", "1"]
  max_tokens_per_second: 5000
  max_requests_per_second: 2.5
  max_models: 10
  model_expiry_seconds: 60
""")
    (e,) = load_inference_config(p)
    assert (e.max_tokens_per_second, e.max_requests_per_second, e.max_models, e.model_expiry_seconds) == (
        5000.0, 2.5, 10, 60.0)
    assert e.limits.max_tokens_per_second == 5000 and e.limits.max_models == 10 and e.limits.gpus == 2
    default = EngineConfig("vllm", "http://h:1/metrics", ("0", "1")).limits
    assert default.max_tokens_per_second == 2_000_000 and default.max_models == 100


@pytest.mark.parametrize("field, value", [("max_tokens_per_second", "0"), ("max_requests_per_second", "-3"),
                                          ("max_models", "2.5"), ("model_expiry_seconds", ".inf"),
                                          ("max_models", "true")])
def test_bad_bounds_name_file_line_and_field(tmp_path: Path, field: str, value: str) -> None:
    p = write(tmp_path, f"- engine: vllm\n  url: http://h:1/metrics\n  gpus: ['0']\n  {field}: {value}\n")
    with pytest.raises(InferenceConfigError) as err:
        load_inference_config(p)
    assert f"{p}:4" in str(err.value) and f"field {field!r}" in str(err.value)
