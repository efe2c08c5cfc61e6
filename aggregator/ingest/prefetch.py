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
    pays the store's time and the parsing one after the other). While the
    consumer holds one result, at most ``ahead`` more tasks run, so memory
    stays bounded by ``ahead`` answers. A task's error is raised here, in its
    turn; when the consumer stops early, no further task starts and running
    ones end within their request deadline in daemon threads (they never hold
    the process's exit). ``ahead`` 0 runs every task in the caller's thread.
    """
    if ahead <= 0:
        for task in tasks:
            yield task()
        return
    pending: deque[tuple[threading.Thread, list[tuple[Any, BaseException | None]]]] = deque()
    source = iter(tasks)

    def start(task: Callable[[], T]) -> None:
        box: list[tuple[Any, BaseException | None]] = []

        def run() -> None:
            try:
                box.append((task(), None))
            except BaseException as exc:  # handed to the consumer, raised there in its turn
                box.append((None, exc))

        worker = threading.Thread(target=run, name="wattfleet-prefetch", daemon=True)
        worker.start()
        pending.append((worker, box))

    for task in source:
        start(task)
        if len(pending) >= ahead:
            break
    while pending:
        worker, box = pending.popleft()
        worker.join()
        item, error = box[0]
        box.clear()
        if error is not None:
            raise error
        for task in source:  # keep `ahead` running while the consumer has this one
            start(task)
            break
        yield item
