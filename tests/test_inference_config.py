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
""")
    assert load_inference_config(p) == [
        EngineConfig("vllm", "http://127.0.0.1:8000/metrics", ("0", "1")),
        EngineConfig("tgi", "http://127.0.0.1:8080/metrics", ("2",), "bigscience/bloom-560m", 0.25),
    ]
    assert load_inference_config(p)[0].endpoint == "127.0.0.1:8000"


def test_engines_key_is_accepted(tmp_path: Path) -> None:
    p = write(tmp_path, "engines:\n  - {engine: sglang, url: 'http://localhost:30000/metrics', gpus: ['0']}\n")
    assert load_inference_config(p)[0].engine == "sglang"


@pytest.mark.parametrize("body, line, needle", [
    ("- engine: llamacpp\n  url: http://h:1/metrics\n  gpus: ['0']\n", 1, "field 'engine' must be one of"),
    ("- engine: vllm\n  url: ftp://h/metrics\n  gpus: ['0']\n", 2, "field 'url' must be an http(s) URL"),
    ("- engine: vllm\n  url: http://h:1/metrics\n  gpus: []\n", 3, "field 'gpus' must be a non-empty list"),
    ("- engine: vllm\n  url: http://h:1/metrics\n  gpus:\n    - '0'\n    - GPU-abc\n", 5, "field 'gpus[1]'"),
    ("- engine: vllm\n  url: http://h:1/metrics\n  gpus: ['0']\n  timeout_seconds: -1\n", 4,
     "field 'timeout_seconds'"),
    ("- engine: vllm\n  url: http://h:1/metrics\n  gpus: ['0']\n  gpu: ['1']\n", 4, "unknown field 'gpu'"),
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
