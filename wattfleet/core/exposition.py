"""Rendered Prometheus expositions: what every wattfleet HTTP endpoint serves.

Both the exporter and ``wattfleet serve`` render their metric families once per
refresh into a :class:`Snapshot`; a scrape only copies its bytes, so serving
costs the same however much work the rendering was.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.core import Metric as PromMetric
from prometheus_client.exposition import generate_latest


@dataclass
class Snapshot:
    """One rendered exposition and when it was taken."""

    body: bytes
    wall_time: float
    _gzipped: bytes | None = field(default=None, repr=False)

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=1)
        return self._gzipped


class _Families:
    """Adapter giving ``generate_latest`` the registry-like ``collect()`` it expects."""

    def __init__(self, families: Iterable[PromMetric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[PromMetric]:
        return self._families


def render_families(families: Iterable[PromMetric]) -> bytes:
    """The text exposition of ``families``, byte-for-byte what prometheus-client writes."""
    return generate_latest(_Families(families))
