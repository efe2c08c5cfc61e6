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
from collections.abc import Callable, Iterator
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
