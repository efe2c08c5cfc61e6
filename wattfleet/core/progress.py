"""Progress of long loops: a bar on a terminal, a periodic log line anywhere else.

A carriage-return progress bar is fine on a terminal and garbage in a
Kubernetes job log, a CI log or a file: there it becomes one huge line or
thousands of fragments. So :func:`progress` draws a tqdm bar only when the
stream is a TTY, and otherwise logs ``desc: i/n unit (p%)`` every
``every_seconds`` or every ``every_percent``, whichever comes first, plus a
last line when done.
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any, Protocol, TextIO

log = logging.getLogger(__name__)


class Progress(Protocol):
    def update(self, n: int = 1) -> Any: ...

    def close(self) -> None: ...


class LogProgress:
    """The non-terminal form: an INFO log line now and then, and one at the end."""

    def __init__(self, total: int, desc: str, unit: str, every_seconds: float = 10.0,
                 every_percent: float = 10.0, enabled: bool = True, clock: Any = time.monotonic) -> None:
        self.total, self.desc, self.unit, self.enabled = total, desc, unit, enabled
        self.every_seconds, self.every_percent, self.clock = every_seconds, every_percent, clock
        self.n = 0
        self._started = self._last_time = clock()
        self._last_percent = 0.0
        self._last_n = 0
        self._closed = False

    def _line(self) -> str:
        percent = f" ({100.0 * self.n / self.total:.0f}%)" if self.total else ""
        return f"{self.desc}: {self.n}/{self.total} {self.unit}{percent} in {self.clock() - self._started:.1f}s"

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.enabled:
            return
        now = self.clock()
        percent = 100.0 * self.n / self.total if self.total else 0.0
        if self.n < self.total and (now - self._last_time >= self.every_seconds
                                    or percent - self._last_percent >= self.every_percent):
            self._last_time, self._last_percent, self._last_n = now, percent, self.n
            log.info(self._line())

    def close(self) -> None:
        if self.enabled and not self._closed and (self.n != self._last_n or self.n == 0):
            log.info(self._line())
        self._closed = True

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def progress(total: int, desc: str, unit: str = "it", enabled: bool = True,
             stream: TextIO | None = None, every_seconds: float = 10.0, every_percent: float = 10.0) -> Progress:
    """A tqdm bar when ``stream`` (default stderr) is a terminal, else a :class:`LogProgress`.

    ``enabled=False`` shows nothing (``--no-progress``). Use it like tqdm: ``update(n)``, ``close()``.
    """
    stream = stream if stream is not None else sys.stderr
    if enabled and stream.isatty():
        try:
            from tqdm import tqdm  # optional dependency (the aggregator extra): without it, log lines
        except ModuleNotFoundError:
            pass
        else:
            return tqdm(total=total, desc=desc, unit=unit, file=stream)
    return LogProgress(total, desc, unit, every_seconds, every_percent, enabled)
