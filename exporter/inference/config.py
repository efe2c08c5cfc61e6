"""The ``--inference-config`` file: which engines run on this node and on which GPUs.

A YAML list, one entry per engine endpoint::

    - engine: vllm                       # vllm | sglang | tgi
      url: http://127.0.0.1:8000/metrics
      gpus: ["0", "1"]                   # NVML indices the engine runs on
      model: meta-llama/Llama-3.1-8B     # optional: overrides the model the engine reports
      timeout_seconds: 0.5               # optional, default 0.5

The GPU mapping cannot be discovered from the engine's metrics, and a wrong
mapping silently moves energy between engines, so it is validated fully and
every error names the file, the line and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from wattfleet.aggregator.yamlpos import YamlPositionError, load_with_lines

ENGINES: tuple[str, ...] = ("vllm", "sglang", "tgi")
DEFAULT_TIMEOUT_SECONDS = 0.5
_FIELDS = {"engine", "url", "gpus", "model", "timeout_seconds"}


class InferenceConfigError(ValueError):
    """Every problem found in an inference config, one per line of the message."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid inference config:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class EngineConfig:
    engine: str
    url: str
    gpus: tuple[str, ...]
    model: str | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    @property
    def endpoint(self) -> str:
        """``host:port`` for the ``endpoint`` label (the path adds nothing to identify it)."""
        return urlparse(self.url).netloc


def load_inference_config(path: str | Path) -> list[EngineConfig]:
    """Parse and validate ``path``; raises :class:`InferenceConfigError` naming file, line and field."""
    source = str(path)
    try:
        data, lines = load_with_lines(path)
    except YamlPositionError as exc:
        raise InferenceConfigError([str(exc)]) from None
    problems: list[str] = []

    def where(*key: Any) -> str:
        for n in range(len(key), -1, -1):
            if key[:n] in lines:
                return f"{source}:{lines[key[:n]]}"
        return source

    if isinstance(data, dict) and "engines" in data and len(data) == 1:
        data, prefix = data["engines"], ("engines",)
    else:
        prefix = ()
    if not isinstance(data, list) or not data:
        raise InferenceConfigError([f"{where(*prefix)}: expected a non-empty list of engines"])
    engines: list[EngineConfig] = []
    seen_urls: dict[str, int] = {}
    for i, entry in enumerate(data):
        at = prefix + (i,)
        if not isinstance(entry, dict):
            problems.append(f"{where(*at)}: engine {i}: expected a mapping with engine, url and gpus")
            continue
        for key in sorted(set(entry) - _FIELDS):
            problems.append(f"{where(*at, key)}: engine {i}: unknown field {key!r} "
                            f"(known: {', '.join(sorted(_FIELDS))})")
        engine = entry.get("engine")
        if engine not in ENGINES:
            problems.append(f"{where(*at, 'engine')}: engine {i}: field 'engine' must be one of "
                            f"{', '.join(ENGINES)}, got {engine!r}")
        url = entry.get("url")
        parsed = urlparse(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            problems.append(f"{where(*at, 'url')}: engine {i}: field 'url' must be an http(s) URL, got {url!r}")
        elif url in seen_urls:
            problems.append(f"{where(*at, 'url')}: engine {i}: field 'url' repeats engine {seen_urls[url]}")
        else:
            seen_urls[url] = i
        gpus = entry.get("gpus")
        gpu_list: list[str] = []
        if not isinstance(gpus, list) or not gpus:
            problems.append(f"{where(*at, 'gpus')}: engine {i}: field 'gpus' must be a non-empty list of "
                            f"GPU indices, got {gpus!r}")
        else:
            for j, g in enumerate(gpus):
                text = str(g).strip() if isinstance(g, (int, str)) and not isinstance(g, bool) else ""
                if not text.isdigit():
                    problems.append(f"{where(*at, 'gpus', j)}: engine {i}: field 'gpus[{j}]' must be a GPU "
                                    f"index like \"0\", got {g!r}")
                elif str(int(text)) in gpu_list:
                    problems.append(f"{where(*at, 'gpus', j)}: engine {i}: field 'gpus[{j}]' lists GPU {text} twice")
                else:
                    gpu_list.append(str(int(text)))
        model = entry.get("model")
        if model is not None and (not isinstance(model, str) or not model.strip()):
            problems.append(f"{where(*at, 'model')}: engine {i}: field 'model' must be a non-empty string")
        timeout = entry.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 30:
            problems.append(f"{where(*at, 'timeout_seconds')}: engine {i}: field 'timeout_seconds' must be a "
                            f"number of seconds in (0, 30], got {timeout!r}")
            timeout = DEFAULT_TIMEOUT_SECONDS
        if not problems:
            engines.append(EngineConfig(str(engine), str(url), tuple(gpu_list),
                                        model.strip() if isinstance(model, str) else None, float(timeout)))
    if problems:
        raise InferenceConfigError(problems)
    return engines
