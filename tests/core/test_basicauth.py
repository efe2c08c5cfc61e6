"""Basic auth that does not leak user names, survive long passwords and floods, and costs nothing when cached."""

from __future__ import annotations

import base64
import http.client
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import bcrypt
import psutil
import pytest

from wattfleet.core.basicauth import BasicAuth, BasicAuthError, TooManyAttempts
from wattfleet.core.exposition import Snapshot
from wattfleet.core.http import MetricsServer
from wattfleet.core.webconfig import load_web_config


def hashed(password: bytes, rounds: int) -> bytes:
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=rounds))


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def test_unknown_users_cost_the_same_as_known_ones() -> None:
    auth = BasicAuth({"prometheus": hashed(b"right", 10)}, burst=100, checks_per_second=100)
    known = statistics.median(timed(lambda: auth.check("prometheus", "wrong")) for _ in range(5))
    unknown = statistics.median(timed(lambda: auth.check("nobody", "wrong")) for _ in range(5))
    # the dummy hash has the configured users' cost (10), not a cheaper default
    assert 0.6 < unknown / known < 1.6, (known, unknown)


def test_passwords_longer_than_bcrypt_takes_are_refused_not_crashed() -> None:
    auth = BasicAuth({"u": hashed(b"x" * 72, 4)}, burst=100)
    assert auth.check("u", "x" * 72)
    assert not auth.check("u", "x" * 73)      # bcrypt would ignore byte 73: refuse instead
    assert not auth.check("u", "y" * 4096)


def test_success_is_cached_and_failures_draw_on_a_small_budget() -> None:
    now = [0.0]
    auth = BasicAuth({"u": hashed(b"pw", 4)}, cache_seconds=60, checks_per_second=2, burst=3,
                     clock=lambda: now[0])
    assert auth.check("u", "pw")               # one bcrypt run
    for _ in range(2):
        assert not auth.check("u", "nope")      # the rest of the burst of 3
    with pytest.raises(TooManyAttempts):
        auth.check("u", "nope")
    assert auth.check("u", "pw")               # cached: no budget needed
    now[0] += 61                               # the cache entry expired; the bucket refilled meanwhile
    assert auth.check("u", "pw")               # one bcrypt run again, cached again
    for _ in range(2):
        assert not auth.check("u", "nope")
    with pytest.raises(TooManyAttempts):
        auth.check("u", "nope")
    assert auth.check("u", "pw")


@pytest.mark.parametrize("value, message", [
    ("plaintext", "must be a bcrypt hash"),
    ("$2b$10$short", "must be a bcrypt hash"),
    ("$2b$99$" + "a" * 53, "outside 04..31"),
    ("$2b$10$" + "!" * 53, "must be a bcrypt hash"),
])
def test_malformed_hashes_are_refused(value: str, message: str) -> None:
    with pytest.raises(BasicAuthError, match=message):
        BasicAuth.validate_hash(value)


def _server(tmp_path: Path, rounds: int) -> MetricsServer:
    h = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=rounds)).decode()
    (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  prometheus: '{h}'\n")
    s = MetricsServer("127.0.0.1:0", lambda: Snapshot(b"x 1\n", time.time()), load_web_config(tmp_path / "web.yml"))
    s.start()
    return s


def _status(port: int, user: str, password: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    conn.request("GET", "/metrics", headers={"Authorization": f"Basic {token}"})
    status = conn.getresponse().status
    conn.close()
    return status


def test_over_http_long_passwords_get_401_and_floods_get_429(tmp_path: Path) -> None:
    s = _server(tmp_path, rounds=4)
    try:
        assert _status(s.port, "prometheus", "s3cret") == 200
        assert _status(s.port, "prometheus", "p" * 500) == 401
        statuses = [_status(s.port, "prometheus", f"wrong{i}") for i in range(30)]
        assert 429 in statuses
        assert _status(s.port, "prometheus", "s3cret") == 200   # the real client is cached, unaffected
    finally:
        s.stop()


SERVER = """
import sys, time
from wattfleet.core.exposition import Snapshot
from wattfleet.core.http import MetricsServer
from wattfleet.core.webconfig import load_web_config
s = MetricsServer("127.0.0.1:0", lambda: Snapshot(b"x 1\\n", time.time()), load_web_config(sys.argv[1]))
s.start()
print(s.port, flush=True)
time.sleep(60)
"""


def test_a_wrong_password_flood_cannot_burn_a_core(tmp_path: Path) -> None:
    """20 clients hammering wrong passwords for 2 s: the server's bcrypt work is capped by the attempt budget."""
    h = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=10)).decode()   # ~50-100 ms a check here
    (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  prometheus: '{h}'\n")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp_path / "web.yml")], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        server = psutil.Process(proc.pid)
        cpu_before = sum(server.cpu_times()[:2])
        stop = time.monotonic() + 2.0
        statuses: list[int] = []

        def flood() -> None:
            while time.monotonic() < stop:
                statuses.append(_status(port, "prometheus", "wrong"))

        threads = [threading.Thread(target=flood) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu = sum(server.cpu_times()[:2]) - cpu_before
        # Budget: burst 4 + 2/s x 2 s = 8 bcrypt runs (~0.5 CPU-s) at most; every other attempt is a 429
        # costing plain HTTP work. Without the budget each attempt costs a bcrypt run and the flood
        # holds a whole core for a few dozen requests.
        assert statuses.count(401) <= 10, statuses.count(401)
        assert cpu / len(statuses) < 0.005, f"server used {cpu:.2f} CPU-s for {len(statuses)} requests"
    finally:
        proc.kill()
        proc.wait()
