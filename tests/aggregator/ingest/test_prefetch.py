"""The prefetching worker: same items in order, errors raised in the consumer, bounded lookahead, early stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from wattfleet.aggregator.ingest.prefetch import in_order, prefetched


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


def test_in_order_gives_results_in_order_with_a_bounded_number_running() -> None:
    running: list[int] = []
    most = [0]
    lock = threading.Lock()

    def task(i: int) -> Callable[[], int]:
        def run() -> int:
            with lock:
                running.append(i)
                most[0] = max(most[0], len(running))
            time.sleep(0.01 * (i % 3))  # later tasks may finish first
            with lock:
                running.remove(i)
            return i
        return run

    assert list(in_order((task(i) for i in range(20)), 3)) == list(range(20))
    assert 1 <= most[0] <= 3
    assert list(in_order((task(i) for i in range(5)), 0)) == list(range(5))


def test_in_order_raises_a_tasks_error_in_its_turn_and_stops_the_rest() -> None:
    started: list[int] = []

    def task(i: int) -> Callable[[], int]:
        def run() -> int:
            started.append(i)
            if i == 2:
                raise RuntimeError("store gone")
            time.sleep(0.01)
            return i
        return run

    got = []
    with pytest.raises(RuntimeError, match="store gone"):
        for item in in_order((task(i) for i in range(100)), 2):
            got.append(item)
    assert got == [0, 1]
    time.sleep(0.1)
    assert len(started) <= 5  # the failed one, the two before it, at most `ahead` after it; the rest never start


def test_in_order_workers_never_hold_the_process_exit() -> None:
    release = threading.Event()

    def slow() -> int:
        release.wait(5)  # a request still in flight when the consumer gives up
        return 1

    it = in_order(iter([lambda: 0, slow, slow, slow]), 2)
    assert next(it) == 0
    workers = [t for t in threading.enumerate() if t.name == "wattfleet-prefetch"]
    assert workers and all(t.daemon for t in workers)
    it.close()  # type: ignore[attr-defined]
    release.set()
