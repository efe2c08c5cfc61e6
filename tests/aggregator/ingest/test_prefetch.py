"""The prefetching worker: same items in order, errors raised in the consumer, bounded lookahead, early stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from wattfleet.aggregator.ingest.prefetch import prefetched


def test_items_in_order_and_errors_reach_the_consumer() -> None:
    assert list(prefetched(lambda: iter(range(50)), 2)) == list(range(50))
    assert list(prefetched(lambda: iter(range(5)), 0)) == list(range(5))

    def broken() -> Iterator[int]:
        yield 1
        raise RuntimeError("store gone")

    got = []
    with pytest.raises(RuntimeError, match="store gone"):
        for item in prefetched(broken, 1):
            got.append(item)
    assert got == [1]


def test_lookahead_is_bounded_and_an_early_stop_ends_the_worker() -> None:
    made: list[int] = []

    def counting() -> Iterator[int]:
        for i in range(1000):
            made.append(i)
            yield i

    it = prefetched(counting, 2)
    assert next(it) == 0
    time.sleep(0.3)
    assert len(made) <= 1 + 2 + 1       # the one taken, two queued, one being put
    it.close()  # type: ignore[attr-defined]  # a generator: the consumer gives up (a failed write)
    time.sleep(0.3)
    assert not [t for t in threading.enumerate() if t.name == "wattfleet-prefetch"]
