"""Local HTTP API server for the grid client tests, and JsonHttp error tests.

``ApiServer`` is a real http.server on 127.0.0.1 (ephemeral port) serving
canned responses per path, recording every request, so the clients are
tested over real sockets, headers and status codes.
"""

from __future__ import annotations

from typing import Any

import pytest

from fixtures.grid_api import FIXTURES, ApiServer, Seen, fixture_json  # noqa: F401 (shared with other tests)
from wattfleet.aggregator.grid import GridDataError, JsonHttp

FAST = JsonHttp(timeout_s=5.0, retries=1, backoff_s=0.0)


def test_json_ok_and_headers_sent() -> None:
    with ApiServer({"/x": lambda s: (200, {"ok": s.headers.get("auth-token")})}) as api:
        assert FAST.get(api.url + "/x", headers={"auth-token": "t0k"}) == {"ok": "t0k"}


def test_401_is_an_auth_error_with_hint_and_no_retry() -> None:
    with ApiServer({"/x": lambda s: (401, {"message": "Invalid token"})}) as api:
        with pytest.raises(GridDataError) as err:
            FAST.get(api.url + "/x", auth_hint="check MY_TOKEN")
        assert err.value.status == 401
        assert "authentication failed (HTTP 401" in str(err.value)
        assert "Invalid token" in str(err.value) and "check MY_TOKEN" in str(err.value)
        assert api.url + "/x" in str(err.value)
        assert len(api.requests) == 1


def test_5xx_is_retried_then_reported() -> None:
    with ApiServer({"/x": lambda s: (503, b"upstream down")}) as api:
        with pytest.raises(GridDataError) as err:
            FAST.get(api.url + "/x")
        assert "server error after 2 attempt(s): HTTP 503: upstream down" in str(err.value)
        assert len(api.requests) == 2


def test_5xx_then_success_recovers() -> None:
    calls = []

    def flaky(seen: Seen) -> tuple[int, Any]:
        calls.append(1)
        return (500, b"boom") if len(calls) == 1 else (200, {"fine": True})

    with ApiServer({"/x": flaky}) as api:
        assert FAST.get(api.url + "/x") == {"fine": True}


def test_429_reported_as_rate_limit() -> None:
    with ApiServer({"/x": lambda s: (429, {"error": "slow down"})}) as api:
        with pytest.raises(GridDataError, match="rate limited after 2 attempt"):
            FAST.get(api.url + "/x")


def test_4xx_not_retried() -> None:
    with ApiServer({"/x": lambda s: (400, {"error": "bad zone"})}) as api:
        with pytest.raises(GridDataError, match=r"request rejected \(HTTP 400.*bad zone"):
            FAST.get(api.url + "/x")
        assert len(api.requests) == 1


def test_non_json_body() -> None:
    with ApiServer({"/x": lambda s: (200, b"<html>maintenance</html>")}) as api:
        with pytest.raises(GridDataError, match="response is not JSON"):
            FAST.get(api.url + "/x")


def test_connection_refused() -> None:
    with ApiServer() as api:
        url = api.url
    with pytest.raises(GridDataError, match="request failed after 2 attempt.*cannot reach server"):
        FAST.get(url + "/x")
