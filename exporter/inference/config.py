"""The ``--inference-config`` file: which engines run on this node and on which GPUs.

A YAML list, one entry per engine endpoint::

    - engine: vllm                       # vllm | sglang | tgi
      url: http://127.0.0.1:8000/metrics
      gpus: ["0", "1"]                   # NVML indices (or "GPU-<uuid>") the engine runs on
      model: meta-llama/Llama-3.1-8B     # optional: overrides the model the engine reports
      timeout_seconds: 0.5               # optional, default 0.5
      max_tokens_per_second: 2000000     # optional plausibility bounds, default per GPU x gpus
      max_requests_per_second: 20000     #   (see wattfleet.exporter.inference.limits)
      max_models: 100                    # optional: model label values tracked, default 100
      model_expiry_seconds: 600          # optional: a model unseen this long is forgotten
      chunked_prefill: true              # optional: prefill forwards also decode the running batch (TGI
                                         #   chunked prefill); read from the page where it shows

The GPU mapping cannot be discovered from the engine's metrics, and a wrong
mapping silently moves energy between engines, so it is validated fully and
every error names the file, the line and the field.

The path may also be a directory: every ``*.yaml``/``*.yml`` in it (sorted by
name) is one such list, so each serving deployment can drop its own file next
to the others' (``/etc/wattfleet/inference.d/llama.yaml``). Without
``--inference-config`` the exporter looks for a local config in
:data:`DEFAULT_LOCATIONS` (after ``$WATTFLEET_INFERENCE_CONFIG``) and scrapes
what it finds there; a node with none of them scrapes no engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from wattfleet.core.yamlpos import YamlPositionError, load_with_lines
from wattfleet.exporter.inference.limits import EngineLimits

ENGINES: tuple[str, ...] = ("vllm", "sglang", "tgi")
DEFAULT_TIMEOUT_SECONDS = 0.5
_LIMIT_FIELDS = ("max_tokens_per_second", "max_requests_per_second", "max_models", "model_expiry_seconds")
_FIELDS = {"engine", "url", "gpus", "model", "timeout_seconds", "chunked_prefill", *_LIMIT_FIELDS}
ENV_VAR = "WATTFLEET_INFERENCE_CONFIG"
# Looked at in order when --inference-config is not given; the Helm chart mounts the third.
DEFAULT_LOCATIONS: tuple[str, ...] = ("/etc/wattfleet/inference.yaml", "/etc/wattfleet/inference.d",
                                      "/etc/wattfleet/inference")


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
    max_tokens_per_second: float | None = None
    max_requests_per_second: float | None = None
    max_models: int | None = None
    model_expiry_seconds: float | None = None
    chunked_prefill: bool | None = None  # declared; None: read from the engine's page, else unknown

    @property
    def endpoint(self) -> str:
        """``host:port`` for the ``endpoint`` label (the path adds nothing to identify it)."""
        return urlparse(self.url).netloc

    @property
    def limits(self) -> EngineLimits:
        """The plausibility bounds of this engine: the configured ones, defaults scaled by its GPUs."""
        return EngineLimits.for_gpus(len(self.gpus), self.max_tokens_per_second, self.max_requests_per_second,
                                     self.max_models, self.model_expiry_seconds)


def discover_config_path(environ: Mapping[str, str] = os.environ,
                         locations: tuple[str, ...] = DEFAULT_LOCATIONS) -> Path | None:
    """The local inference config to use when none was named: ``$WATTFLEET_INFERENCE_CONFIG``, else the first
    of ``locations`` that exists (a directory counts only when it holds a YAML file); None when there is none.

    A variable naming a missing path is returned anyway, so that loading it fails loudly instead of the
    exporter silently scraping nothing.
    """
    named = environ.get(ENV_VAR, "").strip()
    if named:
        return Path(named)
    for location in locations:
        p = Path(location)
        if p.is_file() or (p.is_dir() and _yaml_files(p)):
            return p
    return None


def _yaml_files(directory: Path) -> list[Path]:
    return sorted(f for f in directory.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file()
                  and not f.name.startswith("."))


def load_inference_config(path: str | Path) -> list[EngineConfig]:
    """Parse and validate ``path`` (a file, or a directory of files); raises :class:`InferenceConfigError`
    naming file, line and field. A URL listed twice, even in two files, is an error."""
    p = Path(path)
    if not p.is_dir():
        return _load_file(p)
    files = _yaml_files(p)
    if not files:
        raise InferenceConfigError([f"{p}: directory holds no *.yaml or *.yml engine list"])
    engines: list[EngineConfig] = []
    problems: list[str] = []
    first: dict[str, Path] = {}
    gpu_owner: dict[str, Path] = {}
    for f in files:
        try:
            loaded = _load_file(f)
        except InferenceConfigError as exc:
            problems.extend(exc.problems)
            continue
        for e in loaded:
            shared = [g for g in e.gpus if g in gpu_owner]
            if e.url in first:
                problems.append(f"{f}: engine url {e.url!r} is already listed in {first[e.url]}")
            elif shared:
                problems.append(f"{f}: engine {e.url!r}: GPU {shared[0]} is already used by an engine in "
                                f"{gpu_owner[shared[0]]}; one GPU's energy cannot be split between engines")
            else:
                first[e.url] = f
                gpu_owner.update({g: f for g in e.gpus})
                engines.append(e)
    if problems:
        raise InferenceConfigError(problems)
    return engines


def _gpu_id(value: Any) -> str | None:
    """``"0"``/``0`` -> ``"0"``; ``"GPU-<uuid>"`` kept as given (resolved to an index once NVML is open)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    text = str(value).strip()
    if text.isdigit():
        return str(int(text))
    if text.startswith("GPU-") and len(text) > 4 and all(c.isalnum() or c == "-" for c in text):
        return text
    return None


def _load_file(path: Path) -> list[EngineConfig]:
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

    prefix: tuple[str | int, ...]
    if isinstance(data, dict) and "engines" in data and len(data) == 1:
        data, prefix = data["engines"], ("engines",)
    else:
        prefix = ()
    if not isinstance(data, list) or not data:
        raise InferenceConfigError([f"{where(*prefix)}: expected a non-empty list of engines"])
    engines: list[EngineConfig] = []
    seen_urls: dict[str, int] = {}
    seen_gpus: dict[str, int] = {}
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
        if not isinstance(url, str) or parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            problems.append(f"{where(*at, 'url')}: engine {i}: field 'url' must be an http(s) URL, got {url!r}")
        elif url in seen_urls:
            problems.append(f"{where(*at, 'url')}: engine {i}: field 'url' repeats engine {seen_urls[url]}")
        else:
            seen_urls[url] = i
        gpus = entry.get("gpus")
        gpu_list: list[str] = []
        if not isinstance(gpus, list) or not gpus:
            problems.append(f"{where(*at, 'gpus')}: engine {i}: field 'gpus' must be a non-empty list of "
                            f"GPU indices or UUIDs, got {gpus!r}")
        else:
            for j, g in enumerate(gpus):
                gpu = _gpu_id(g)
                if gpu is None:
                    problems.append(f"{where(*at, 'gpus', j)}: engine {i}: field 'gpus[{j}]' must be a GPU "
                                    f"index like \"0\" or a UUID like \"GPU-8f6e...\", got {g!r}")
                elif gpu in gpu_list:
                    problems.append(f"{where(*at, 'gpus', j)}: engine {i}: field 'gpus[{j}]' lists GPU {gpu} twice")
                elif gpu in seen_gpus:
                    problems.append(f"{where(*at, 'gpus', j)}: engine {i}: field 'gpus[{j}]': GPU {gpu} is already "
                                    f"used by engine {seen_gpus[gpu]}; one GPU's energy cannot be split between "
                                    f"engines")
                else:
                    gpu_list.append(gpu)
                    seen_gpus[gpu] = i
        model = entry.get("model")
        if model is not None and (not isinstance(model, str) or not model.strip()):
            problems.append(f"{where(*at, 'model')}: engine {i}: field 'model' must be a non-empty string")
        timeout = entry.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 30:
            problems.append(f"{where(*at, 'timeout_seconds')}: engine {i}: field 'timeout_seconds' must be a "
                            f"number of seconds in (0, 30], got {timeout!r}")
            timeout = DEFAULT_TIMEOUT_SECONDS
        limits = {key: _limit(entry, key, problems, f"{where(*at, key)}: engine {i}") for key in _LIMIT_FIELDS}
        chunked = entry.get("chunked_prefill")
        if chunked is not None and not isinstance(chunked, bool):
            problems.append(f"{where(*at, 'chunked_prefill')}: engine {i}: field 'chunked_prefill' must be true "
                            f"or false, got {chunked!r}")
        if not problems:
            engines.append(EngineConfig(str(engine), str(url), tuple(gpu_list),
                                        model.strip() if isinstance(model, str) else None, float(timeout),
                                        chunked_prefill=chunked,
                                        **limits))  # type: ignore[arg-type]
    if problems:
        raise InferenceConfigError(problems)
    return engines


def _limit(entry: dict[str, Any], key: str, problems: list[str], at: str) -> float | int | None:
    """An optional positive bound; ``max_models`` must be a whole number."""
    value = entry.get(key)
    if value is None:
        return None
    whole = key == "max_models"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf") \
            or (whole and value != int(value)):
        kind = "a whole number" if whole else "a number"
        problems.append(f"{at}: field {key!r} must be {kind} above 0, got {value!r}")
        return None
    return int(value) if whole else float(value)
