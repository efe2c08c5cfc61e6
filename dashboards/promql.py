"""PromQL building blocks, every metric name taken from the catalog.

Dashboards and rules compose these instead of writing metric names by hand,
so a renamed metric changes every query at once and a typo cannot reach a
panel. :func:`metric_names` is the inverse: it pulls the series names back out
of an expression so tests can prove each one is published.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from wattfleet.core import catalog
from wattfleet.core.catalog import Metric
from wattfleet.core.units import JOULES_PER_KWH

# Dashboard template variables, as the label they filter and Grafana's syntax.
VAR_CLUSTER, VAR_SITE, VAR_NODE, VAR_GPU = "$cluster", "$site", "$node", "$gpu"
RATE_INTERVAL = "$__rate_interval"
RANGE = "$__range"
INTERVAL = "$__interval"
INTERVAL_MS = "$__interval_ms"

# Grid intensity used for location-based carbon: the hourly average signal.
AVERAGE_SIGNAL = "average"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def selector(metric: Metric | str, *, eq: dict[str, str] | None = None,
             regex: dict[str, str] | None = None, ne: dict[str, str] | None = None) -> str:
    """``name{a="x",c!="z",b=~"y"}``; ``metric`` is a catalog entry or one of our recording rules."""
    name = metric.series if isinstance(metric, Metric) else metric
    parts = [f"{k}={_quote(v)}" for k, v in (eq or {}).items()]
    parts += [f"{k}!={_quote(v)}" for k, v in (ne or {}).items()]
    parts += [f"{k}=~{_quote(v)}" for k, v in (regex or {}).items()]
    return f"{name}{{{','.join(parts)}}}" if parts else name


def node_filters(gpu: bool = False) -> dict[str, str]:
    """Regex matchers binding exporter series to the dashboard's variables."""
    f = {"cluster": VAR_CLUSTER, "site": VAR_SITE, "node": VAR_NODE}
    if gpu:
        f["gpu"] = VAR_GPU
    return f


def site_filter() -> dict[str, str]:
    """Aggregator series carry ``site`` but no node labels."""
    return {"site": VAR_SITE}


def by(labels: Iterable[str]) -> str:
    return f"by ({', '.join(labels)})"


def agg(op: str, expr: str, labels: Iterable[str] = ()) -> str:
    labels = tuple(labels)
    return f"{op} {by(labels)} ({expr})" if labels else f"{op}({expr})"


def rate(sel: str, window: str = RATE_INTERVAL) -> str:
    return f"rate({sel}[{window}])"


def increase(sel: str, window: str = RANGE) -> str:
    return f"increase({sel}[{window}])"


def it_domains_regex() -> str:
    """CPU domains that add up to IT energy: package + dram, never psys/core/uncore."""
    return "|".join(catalog.RAPL_IT_DOMAINS)


def it_energy(fn: str, window: str, filters: dict[str, str] | None = None) -> str:
    """GPU + CPU(package, dram) energy as one vector: ``fn`` is rate or increase.

    ``or`` keeps every side (their label sets never coincide: GPUs carry
    ``gpu``, CPUs ``socket``), so a node without GPUs still counts its CPUs.
    Estimated CPU energy counts only on nodes with no measured CPU series
    (``--estimate-cpu always`` publishes both; adding them would double count).
    """
    f = dict(filters or {})
    cpu_it = {**f, "domain": it_domains_regex()}
    gpu = selector(catalog.GPU_ENERGY, regex=f)
    measured = selector(catalog.CPU_ENERGY, eq={"method": catalog.METHOD_MEASURED}, regex=cpu_it)
    estimated = selector(catalog.CPU_ENERGY, eq={"method": catalog.METHOD_ESTIMATED}, regex=cpu_it)
    any_measured = selector(catalog.CPU_ENERGY, eq={"method": catalog.METHOD_MEASURED}, regex=f)
    return (f"{fn}({gpu}[{window}]) or {fn}({measured}[{window}]) or "
            f"({fn}({estimated}[{window}]) unless on(cluster, site, node) {any_measured})")


def phase_energy(fn: str, window: str, filters: dict[str, str] | None = None,
                 eq: dict[str, str] | None = None) -> str:
    """Inference phase energy as one vector, one attribution method per engine: ``fn`` is rate or increase.

    An engine instrumented with phase markers (``method="marked"``) that is
    also split by TGI forward time (``phase_time``) would otherwise count its
    GPUs' energy twice; the marked figure wins, as it is read at the phase
    boundaries instead of assuming equal power in both phases.
    """
    f, e = dict(filters or {}), dict(eq or {})
    metric = catalog.INFERENCE_PHASE_ENERGY
    timed = selector(metric, eq={**e, "method": catalog.PHASE_METHOD_TIME}, regex=f)
    others = selector(metric, eq=e or None, ne={"method": catalog.PHASE_METHOD_TIME}, regex=f)
    marked = selector(metric, eq={"method": catalog.PHASE_METHOD_MARKED}, regex=f)
    return (f"{fn}({others}[{window}]) or "
            f"({fn}({timed}[{window}]) unless on(cluster, site, node, engine, model) {marked})")


def pue_by_site_zone() -> str:
    """One PUE per (site, zone), however many aggregator replicas publish it."""
    return agg("max", selector(catalog.SITE_PUE), ("site", "zone"))


def intensity_by_zone() -> str:
    """One location-based (average) intensity per zone, whatever the number of sources."""
    return agg("max", selector(catalog.GRID_INTENSITY, eq={"signal": AVERAGE_SIGNAL}), ("zone",))


def with_pue(expr: str) -> str:
    """Facility-level: ``expr`` (labels include ``site``) x PUE, gaining ``zone``.

    The live, PromQL twin of the accounting formula ``facility_kwh`` (``sql/macros.sql``, where
    the facts apply it); the PUE it multiplies by is the one ``wattfleet serve`` publishes,
    chosen by ``estimators.site_pue_at``, which tests pin to the facts' own choice.
    """
    return f"({expr}) * on(site) group_left(zone) {pue_by_site_zone()}"


def with_intensity(expr: str) -> str:
    """Grams per second: ``expr`` in watts (labels include ``zone``) x g/kWh / 3.6e6."""
    return f"({expr}) * on(zone) group_left() {intensity_by_zone()} / {JOULES_PER_KWH:g}"


def integrate(expr: str) -> str:
    """Cumulative value of a per-second rate over the panel's range (a subquery sum)."""
    return f"sum_over_time(({expr})[{RANGE}:{INTERVAL}]) * {INTERVAL_MS} / 1000"


# --- extraction ------------------------------------------------------------
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
_IDENT = re.compile(r"(?<![A-Za-z0-9_:.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_NUMBER_WORDS = {"inf", "nan", "Inf", "NaN"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "atan2"}


def metric_names(expr: str) -> set[str]:
    """Series names an expression reads (functions, keywords, labels and $variables removed)."""
    text = _STRING.sub('""', expr)
    text = _VARIABLE.sub("1", text)
    text = _BRACES.sub("", text)
    text = _BRACKETS.sub("", text)
    text = _LABEL_LISTS.sub("", text)
    names = set()
    for m in _IDENT.finditer(text):
        word, call = m.group(1), m.group(2)
        if call or word in KEYWORDS or word in _NUMBER_WORDS:
            continue
        if re.fullmatch(r"[0-9a-fA-FxX]+", word):
            continue
        names.add(word)
    return names
