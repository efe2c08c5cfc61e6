"""A token bucket: at most ``burst`` events at once, refilled at ``rate_per_second``.

Used wherever wattfleet must bound how often something costly may happen
(requests under the web config's ``rate_limit``, bcrypt checks under basic auth).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Thread-safe; ``take()`` spends one token or says there is none."""

    def __init__(self, rate_per_second: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate_per_second, float(burst), clock
        self._tokens, self._at = float(burst), clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True
