"""A facility's grid spec, checked: known source, allowed keys, required fields, HTTP settings, paths.

Unknown keys are errors, so a typo cannot silently change which data is
used; every error is a :class:`GridDataError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wattfleet.aggregator.grid.errors import DEFAULT_MAX_GRAMS_PER_KWH, GridDataError
from wattfleet.aggregator.grid.httpjson import JsonHttp

SPEC = "grid spec"
COMMON_KEYS = {"source", "zone", "fill", "static_table", "max_grams_per_kwh", "basis"}
_HTTP = {"base_url", "timeout_s", "retries", "backoff_s"}
# source -> the keys it reads beside COMMON_KEYS
SOURCE_KEYS: dict[str, set[str]] = {
    "eia930": {"path", "timestamps", "implausible"},
    "electricitymaps": {"path", "emission_factor", "endpoint", "token_env", "timestamps"} | _HTTP,
    "watttime": {"region", "signal_type", "endpoint", "horizon_hours", "min_points_per_hour"} | _HTTP,
    "ukcarbon": {"regionid", "postcode"} | _HTTP,
    "static": {"grams_per_kwh", "path"},
}
SOURCES = tuple(SOURCE_KEYS)

# What an hourly label names: the hour it starts (wattfleet's own convention, docs/accounting.md 1) or the
# hour it ends. Each source that labels hours with one timestamp defaults to the convention it documents
# (docs/accounting.md 5.1): EIA publishes EIA-930 with hour-ending times, Electricity Maps labels an hour
# by its start. WattTime (5-minute point_time) and UK Carbon Intensity (explicit from/to) say which
# interval they mean, so they have no such setting.
TIMESTAMP_CONVENTIONS = ("hour_start", "hour_ending")
DEFAULT_TIMESTAMPS = {"eia930": "hour_ending", "electricitymaps": "hour_start"}
# What to do with an hour the source's own generation mix shows to be implausible (eia930 only,
# docs/accounting.md 5.3): keep it and flag it, treat it as a gap for the fill rules, or refuse the window.
IMPLAUSIBLE_ACTIONS = ("flag", "fill", "refuse")
DEFAULT_IMPLAUSIBLE = "flag"
# What the source's intensity counts (docs/accounting.md 5.5): emissions at the point of generation
# (``direct``: combustion, the GHG Protocol's Scope 2 basis) or over the generators' life cycle
# (``lifecycle``: adds fuel supply chains and plant construction, which belong to Scope 3 Category 3).
# Each source defaults to what it documents: the dc-rl EIA-930 files' avg_CI is life-cycle (IPCC AR5
# medians), WattTime's MOER and NESO's Carbon Intensity API count combustion only; Electricity Maps gives
# both and its basis is the spec's ``emission_factor`` (direct unless set). A static table's figure is
# taken as direct (national inventory and eGRID-style factors count combustion) unless its entry says
# otherwise: the shipped EIA-930-derived annual means say lifecycle (module static).
BASES = ("direct", "lifecycle")
DEFAULT_BASIS = {"eia930": "lifecycle", "watttime": "direct", "ukcarbon": "direct", "static": "direct"}
# Sources whose rows carry the generation mix, so a life-cycle intensity can be split into its direct
# part (Scope 2) and its upstream part (Scope 3 Category 3) hour by hour (module basis).
SPLITTABLE = ("eia930",)


def check_spec(spec: Any) -> str:
    """The spec's source name, once it is a mapping naming a known source with only its allowed keys."""
    if not isinstance(spec, Mapping):
        raise GridDataError(SPEC, None, None, f"expected a mapping, got {type(spec).__name__}")
    source = spec.get("source")
    if source not in SOURCE_KEYS:
        raise GridDataError(SPEC, None, "source", f"unknown source {source!r}; known: {list(SOURCES)}")
    unknown = set(spec) - COMMON_KEYS - SOURCE_KEYS[source]
    if unknown:
        allowed = sorted(COMMON_KEYS | SOURCE_KEYS[source])
        raise GridDataError(SPEC, None, ", ".join(sorted(unknown)),
                            f"unknown key(s) for source {source!r}; allowed: {allowed}")
    return source


def choice(spec: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    """One of ``allowed`` (``default`` when absent); anything else is an error naming the key."""
    value = spec.get(key, default)
    if value not in allowed:
        raise GridDataError(SPEC, None, key, f"must be one of {list(allowed)}, got {value!r}")
    return str(value)


def timestamps(spec: Mapping[str, Any]) -> str:
    """The spec's hour-label convention: ``timestamps`` if set, else the source's documented one."""
    return choice(spec, "timestamps", TIMESTAMP_CONVENTIONS, DEFAULT_TIMESTAMPS.get(str(spec.get("source")),
                                                                                    "hour_start"))


def basis(spec: Mapping[str, Any]) -> str:
    """The basis of the source's intensity: ``basis`` if set, else the source's documented one. For
    Electricity Maps it is the requested ``emission_factor``; a ``basis`` that contradicts it is an error."""
    source = str(spec.get("source"))
    if source == "electricitymaps":
        factor = spec.get("emission_factor", "direct")
        if "basis" in spec and spec["basis"] != factor:
            raise GridDataError(SPEC, None, "basis", f"is {spec['basis']!r} but emission_factor requests "
                                                     f"{factor!r}; Electricity Maps returns the factor asked for")
        return choice({"basis": factor}, "basis", BASES, "direct")
    return choice(spec, "basis", BASES, DEFAULT_BASIS.get(source, "direct"))


def implausible_action(spec: Mapping[str, Any]) -> str:
    """What the spec does with implausible hours (``flag`` unless set)."""
    return choice(spec, "implausible", IMPLAUSIBLE_ACTIONS, DEFAULT_IMPLAUSIBLE)


def need(spec: Mapping[str, Any], key: str) -> Any:
    """A field the source cannot do without."""
    value = spec.get(key)
    if value in (None, ""):
        raise GridDataError(SPEC, None, key, f"required for source {spec.get('source')!r}")
    return value


def number(spec: Mapping[str, Any], key: str, default: float, integer: bool = False) -> Any:
    """A number (or an integer) >= 0, ``default`` when absent."""
    value = spec.get(key, default)
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value < 0:
        kind = "an integer" if integer else "a number"
        raise GridDataError(SPEC, None, key, f"must be {kind} >= 0, got {value!r}")
    return value


def http_client(spec: Mapping[str, Any]) -> JsonHttp:
    """The JSON HTTP client an API source uses, with the spec's timeout, retries and backoff."""
    return JsonHttp(timeout_s=float(number(spec, "timeout_s", 30.0)), retries=number(spec, "retries", 2, True),
                    backoff_s=float(number(spec, "backoff_s", 1.0)))


def pick(spec: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """The given keys that the spec sets, as keyword arguments for a client."""
    return {k: spec[k] for k in keys if k in spec}


def resolve_path(path: Any, base_dir: str | Path | None) -> Path:
    """A relative path resolves against ``base_dir`` (the facility config's folder)."""
    p = Path(path)
    return p if p.is_absolute() or base_dir is None else Path(base_dir) / p


def max_intensity(spec: Mapping[str, Any]) -> float:
    """The spec's bound on a plausible hourly intensity (gCO2e/kWh); rows above it are refused."""
    return float(number(spec, "max_grams_per_kwh", DEFAULT_MAX_GRAMS_PER_KWH))
