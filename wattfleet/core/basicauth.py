"""HTTP basic auth against bcrypt hashes, safe to expose to the network.

bcrypt is slow on purpose, which makes a naive checker both a timing oracle
and a CPU sink. Here:

* unknown users are checked against a dummy hash of the same cost as the
  slowest real one, so the response time does not tell which names exist;
* passwords over bcrypt's 72-byte limit are refused in the same time as a
  wrong password (never an exception that drops the connection);
* a successful (user, password) is remembered by its SHA-256 for a short
  while, so Prometheus scraping every second costs a dictionary lookup;
* bcrypt runs are drawn from a small token bucket: a flood of wrong
  passwords gets HTTP 429 instead of occupying every core.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable

import bcrypt

from wattfleet.core.tokenbucket import TokenBucket

BCRYPT_MAX_PASSWORD_BYTES = 72
_HASH = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")


class BasicAuthError(ValueError):
    """A configured hash is not a usable bcrypt hash."""


class TooManyAttempts(Exception):
    """The bcrypt budget is spent: answer 429 and let the client retry later."""


class BasicAuth:
    """Checks credentials against ``users`` (name -> bcrypt hash bytes)."""

    def __init__(self, users: dict[str, bytes], cache_seconds: float = 60.0, checks_per_second: float = 2.0,
                 burst: int = 4, clock: Callable[[], float] = time.monotonic) -> None:
        self.users = dict(users)
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._budget = TokenBucket(checks_per_second, burst, clock)
        self._ok: dict[tuple[str, bytes], float] = {}
        self._lock = threading.Lock()
        rounds = max((self.cost(h) for h in self.users.values()), default=4)
        self._dummy = bcrypt.hashpw(os.urandom(16), bcrypt.gensalt(rounds=rounds))

    @staticmethod
    def cost(hashed: bytes) -> int:
        return int(hashed[4:6])

    @staticmethod
    def validate_hash(hashed: object) -> None:
        """Raise :class:`BasicAuthError` unless ``hashed`` is a well-formed bcrypt hash bcrypt accepts."""
        if not isinstance(hashed, str) or not _HASH.match(hashed):
            raise BasicAuthError("must be a bcrypt hash ($2y$NN$ followed by 53 characters)")
        if not 4 <= int(hashed[4:6]) <= 31:
            raise BasicAuthError(f"bcrypt cost {hashed[4:6]} is outside 04..31")
        try:
            bcrypt.checkpw(b"", hashed.encode())
        except ValueError as exc:
            raise BasicAuthError(f"not a valid bcrypt hash: {exc}") from None

    def check(self, user: str, password: str) -> bool:
        """True when the credentials match; raises :class:`TooManyAttempts` when over budget."""
        if not self.users:
            return True
        secret = password.encode("utf-8", "surrogateescape")
        key = (user, hashlib.sha256(secret).digest())
        now = self.clock()
        with self._lock:
            expires = self._ok.get(key)
            if expires is not None and expires > now:
                return True
            if not self._budget.take():
                raise TooManyAttempts()
        hashed = self.users.get(user)
        # Same work whatever is wrong: unknown user, over-long password or a wrong one.
        candidate = secret[:BCRYPT_MAX_PASSWORD_BYTES]
        ok = bcrypt.checkpw(candidate, hashed if hashed is not None else self._dummy)
        ok = ok and hashed is not None and len(secret) <= BCRYPT_MAX_PASSWORD_BYTES
        if ok:
            with self._lock:
                if len(self._ok) > 1024:
                    self._ok = {k: v for k, v in self._ok.items() if v > now}
                self._ok[key] = now + self.cache_seconds
        return ok
