"""Series shards by node: each query of a window asks for a bounded number of nodes.

A query over the whole fleet answers with every device's series; on a
100,000-GPU fleet that is one answer of hundreds of megabytes, which the
store must build in its own memory too. The nodes that have any of the
queried series in the span are listed first (``/api/v1/label/node/values``
with ``match[]``, which Prometheus, VictoriaMetrics, Thanos and Mimir all
serve), sorted, and cut into shards of ``shard_nodes``; each shard is a
``node=~"a|b|..."`` matcher of exact alternatives, which Prometheus and
VictoriaMetrics match as a set lookup. The first shard also matches series
without a node label (``""``), so no series falls between shards.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from wattfleet.aggregator.ingest.store_client import StoreClient
from wattfleet.aggregator.ingest.telemetry import TelemetrySourceError

_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


def regex_literal(value: str) -> str:
    """``value`` as an RE2 pattern matching only itself (RE2 takes a backslash before any punctuation)."""
    return _SPECIAL.sub(r"\\\1", value)


def promql_string(value: str) -> str:
    """A double-quoted PromQL string literal (PromQL takes Go's escapes, which JSON's are a subset of)."""
    return json.dumps(value)


def shard_matchers(nodes: list[str], shard_nodes: int) -> list[str]:
    """``node=~"..."`` matchers of at most ``shard_nodes`` nodes each; [""] (no matcher) when one shard does."""
    nodes = sorted(set(nodes))
    if shard_nodes <= 0 or len(nodes) <= shard_nodes:
        return [""]
    out = [node_matcher(nodes[:shard_nodes])]
    for i in range(shard_nodes, len(nodes), shard_nodes):
        out.append(f"node=~{promql_string('|'.join(regex_literal(n) for n in nodes[i:i + shard_nodes]))}")
    return out


def node_matcher(nodes: list[str]) -> str:
    """``node=~"..."`` matching exactly these nodes (and series without a node label)."""
    return f"node=~{promql_string('|'.join([''] + [regex_literal(n) for n in sorted(set(nodes))]))}"


def node_shards(client: StoreClient, series: list[str], start: datetime, end: datetime, shard_nodes: int
                ) -> list[str]:
    """The shard matchers for the nodes with any of ``series`` in [start, end] (naive UTC)."""
    if shard_nodes <= 0:
        return [""]
    params = [("match[]", s) for s in series] + [("start", f"{_unix(start):.0f}"), ("end", f"{_unix(end):.0f}")]
    nodes = client.get("label/node/values", params)
    if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
        raise TelemetrySourceError(f"{client.url}: label values of node are not a list of strings")
    return shard_matchers(nodes, shard_nodes)


def _unix(dt: datetime) -> float:
    return dt.replace(tzinfo=timezone.utc).timestamp() if dt.tzinfo is None else dt.timestamp()
