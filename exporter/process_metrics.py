"""The exporter's own ``process_*`` metrics, appended to every scrape.

Operators alert on an exporter's memory, CPU and restarts the same way for
every exporter (``process_resident_memory_bytes``, ``process_start_time_seconds``),
so the exposition carries prometheus_client's ProcessCollector families. They
are read from ``/proc/self`` at scrape time (cheap, no hardware access), after
the sampler's snapshot, which stays the one place sensors are read.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from wattfleet.core.exposition import Snapshot


def with_process_metrics(get_snapshot: Callable[[], Snapshot | None]) -> Callable[[], Snapshot | None]:
    """``get_snapshot`` whose snapshots also carry the process_* families (none where /proc is absent)."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)

    def snapshot() -> Snapshot | None:
        current = get_snapshot()
        if current is None:
            return None
        return Snapshot(current.body + generate_latest(registry), current.wall_time)

    return snapshot
