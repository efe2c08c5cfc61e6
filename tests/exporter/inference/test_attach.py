"""`wattfleet exporter --inference-config`: end to end through the exporter's own CLI code."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fixtures.inference_engines import V1, EngineServer
from wattfleet.core import catalog
from wattfleet.exporter.cli import add_arguments, build_sampler, run
from wattfleet.exporter.inference.config import ENV_VAR, InferenceConfigError
from wattfleet.exporter.inference.sensor import InferenceSensor
from wattfleet.sim.fake_nvml import FakeNvml

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(["--node", "n1", "--sysfs-root", "/nonexistent", *argv])


@pytest.fixture
def engine() -> Iterator[EngineServer]:
    s = EngineServer("vllm_v1.txt", **V1)
    yield s
    s.stop()


def inference_sensor(sampler: object) -> InferenceSensor | None:
    found = [s for s in sampler.sensors if s.name == "inference"]  # type: ignore[attr-defined]
    return found[0] if found else None


def test_once_prints_the_engine_series(engine: EngineServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    cfg = tmp_path / "engines.yaml"
    cfg.write_text(f"- engine: vllm\n  url: {engine.url}\n  gpus: ['0']\n")
    assert run(parse("--inference-config", str(cfg), "--once", "--interval", "1")) == 0  # waits 0.1 s per tick
    text = capsys.readouterr().out
    samples = {(s.name, s.labels.get("phase"), s.labels.get("engine")): s
               for f in text_string_to_metric_families(text) for s in f.samples}
    tokens = samples[(catalog.INFERENCE_TOKENS.series, "prefill", "vllm")]
    assert tokens.labels["model"] == LLAMA and tokens.labels["node"] == "n1"
    assert samples[(catalog.INFERENCE_ENGINE_UP.name, None, "vllm")].value == 1
    assert samples[(catalog.INFERENCE_ENGINE_GPUS.series, None, "vllm")].labels["gpu"] == "0"


def test_a_bad_config_stops_the_exporter_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    cfg = tmp_path / "engines.yaml"
    cfg.write_text("- engine: vllm\n  url: http://127.0.0.1:1/metrics\n  gpus: ['zero']\n")
    assert run(parse("--inference-config", str(cfg), "--once")) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:3: engine 0: field 'gpus[0]'" in err and "Traceback" not in err
    assert run(parse("--inference-config", str(tmp_path / "missing.yaml"), "--once")) == 2
    assert "cannot read" in capsys.readouterr().err


def test_gpu_uuids_resolve_to_nvml_indices(engine: EngineServer, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    nvml = FakeNvml.with_gpus(3)
    cfg = tmp_path / "engines.yaml"
    cfg.write_text(f"- engine: vllm\n  url: {engine.url}\n  gpus: ['{nvml.gpus[2].uuid}', 1]\n")
    sampler = build_sampler(parse("--inference-config", str(cfg)), nvml=nvml)
    try:
        sensor = inference_sensor(sampler)
        assert sensor is not None and sensor.engines[0].cfg.gpus == ("2", "1")
        assert sensor.energy_source is not None
    finally:
        sampler.stop()
    cfg.write_text(f"- engine: vllm\n  url: {engine.url}\n  gpus: ['GPU-not-here']\n")
    with pytest.raises(InferenceConfigError, match="GPU GPU-not-here is not on this node"):
        build_sampler(parse("--inference-config", str(cfg)), nvml=nvml)


def test_engines_are_discovered_from_the_local_config_unless_the_collector_is_off(
        engine: EngineServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "inference.d"
    d.mkdir()
    (d / "llama.yaml").write_text(f"- engine: vllm\n  url: {engine.url}\n  gpus: [0]\n")
    monkeypatch.setenv(ENV_VAR, str(d))
    sampler = build_sampler(parse(), nvml=FakeNvml.with_gpus(1))
    try:
        sensor = inference_sensor(sampler)
        assert sensor is not None and sensor.engines[0].cfg.url == engine.url
    finally:
        sampler.stop()
    sampler = build_sampler(parse("--disable-collector", "inference"), nvml=FakeNvml.with_gpus(1))
    assert inference_sensor(sampler) is None
    sampler.stop()
    monkeypatch.delenv(ENV_VAR)
    sampler = build_sampler(parse(), nvml=FakeNvml.with_gpus(1))  # nothing at /etc/wattfleet on a test box
    assert inference_sensor(sampler) is None or Path("/etc/wattfleet").exists()
    sampler.stop()
