"""Test support: a real `wattfleet` server process, started until it logs where it listens."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def ipv6_loopback() -> bool:
    """Whether this machine can bind [::1] (containers without IPv6 cannot)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@contextmanager
def wattfleet_server(argv: list[str], announce: str,
                     timeout: float = 60.0) -> Iterator[tuple[str, subprocess.Popen[str], str]]:
    """Run ``wattfleet *argv``; yield (the URL its stderr announces with ``announce``, the process, that line).

    ``announce`` is a regular expression whose first group is the URL. The process is terminated on exit.
    """
    proc = subprocess.Popen([sys.executable, "-m", "wattfleet", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(announce, line)
            if found:
                yield found.group(1), proc, line
                return
        pytest.fail(f"wattfleet {argv[0]} never said where it serves: " + "".join(lines))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
