"""Read the store's next answer while the database takes the last one.

The store computes and sends an answer while the aggregator waits; the
aggregator parses and inserts while the store waits. Running the fetching
iterator in one worker thread, a bounded number of items ahead, overlaps the
two (DuckDB and socket reads release the GIL). Memory stays bounded: at most
``depth`` finished items wait in the queue, plus one being built and one being
written.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()


def prefetched(make: Callable[[], Iterator[T]], depth: int = 1) -> Iterator[T]:
    """The items of ``make()``, produced in a worker thread up to ``depth`` ahead; its errors re-raised here.

    When the consumer stops early (an error while writing), the worker stops
    at its next item; a request it has in flight ends within its deadline.
    """
    if depth <= 0:
        yield from make()
        return
    slots: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any, error: BaseException | None = None) -> bool:
        while not stop.is_set():
            try:
                slots.put((item, error), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in make():
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(_DONE, exc)
            return
        put(_DONE)

    worker = threading.Thread(target=work, name="wattfleet-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()


def in_order(tasks: Iterable[Callable[[], T]], ahead: int = 2) -> Iterator[T]:
    """The results of ``tasks``, in order, with up to ``ahead`` of them running in worker threads.

    The store answers one request while the aggregator parses another: with
    several requests in flight neither waits for the other (a sequential pull
    pays the store's time and the parsing one after the other). At most
    ``ahead`` results exist beyond the one the consumer holds, so memory stays
    bounded by ``ahead`` answers. A task's error is raised here, in its turn;
    when the consumer stops early, tasks not yet started are cancelled and
    running ones end within their request deadline. ``ahead`` 0 runs every
    task in the caller's thread.
    """
    if ahead <= 0:
        for task in tasks:
            yield task()
        return
    pool = ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="wattfleet-prefetch")
    pending: deque[Future[T]] = deque()
    try:
        for task in tasks:
            pending.append(pool.submit(task))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
