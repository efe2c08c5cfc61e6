"""Waiting for the signal that stops a daemon."""

from __future__ import annotations

import signal
import threading


def wait_for_stop_signal(timeout: float | None = None) -> None:
    """Block until SIGTERM or SIGINT (or ``timeout`` seconds): every daemon's shutdown path.

    Kubernetes stops pods with SIGTERM, a terminal with SIGINT; both must let
    the caller stop its servers and threads cleanly instead of dying mid-write.
    """
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait(timeout)
