"""When a plan in progress must stop: its deadline has passed or nobody is waiting for it any more.

The plan runs in a worker thread while the request thread watches the
client; either side may call :meth:`WorkGuard.cancel`. The worker calls
:meth:`WorkGuard.check` between units of work (before each site's intensity
is loaded), so abandoned work ends at the next unit instead of running to
completion for nobody.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class PlanStopped(Exception):
    """A plan stopped before it finished (not the request's fault: never a 400)."""


class DeadlineExceeded(PlanStopped):
    """The plan took longer than its request's deadline."""


class ClientGone(PlanStopped):
    """The client closed its connection; the answer would reach nobody."""


class WorkGuard:
    """A deadline (``clock`` seconds) plus a cancel flag, checked by the worker between units of work."""

    def __init__(self, deadline_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.deadline = clock() + deadline_seconds
        self._cancelled = threading.Event()
        self._reason: PlanStopped | None = None
        self.units = 0  # checkpoints passed: how much work was started

    def cancel(self, reason: PlanStopped) -> None:
        """Stop the worker at its next checkpoint, for ``reason``."""
        self._reason = reason
        self._cancelled.set()

    def remaining(self) -> float:
        return self.deadline - self._clock()

    def check(self) -> None:
        """Raise the reason to stop, if any; else count one more unit of work started."""
        if self._cancelled.is_set():
            raise self._reason or PlanStopped("cancelled")
        if self.remaining() <= 0:
            raise DeadlineExceeded("deadline passed")
        self.units += 1
