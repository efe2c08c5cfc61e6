"""Minimal JSON-over-HTTP GET with clear errors, for the grid API clients.

Standard library only (urllib), so the aggregator needs no HTTP dependency.
Every failure becomes a :class:`GridDataError` naming the URL: an auth
failure says which credential to check, a 5xx or a refused connection is
retried a few times (the upstream APIs do have short outages) and then
reported with the status and the start of the body.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wattfleet.aggregator.grid.errors import GridDataError

USER_AGENT = "wattfleet-grid/0.1"


def _excerpt(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


def build_url(base_url: str, path: str, params: Mapping[str, Any] | None = None) -> str:
    url = base_url.rstrip("/") + "/" + path.lstrip("/")
    if params:
        query = {k: v for k, v in params.items() if v is not None}
        if query:
            url += "?" + urllib.parse.urlencode(query)
    return url


def basic_auth_header(username: str, password: str) -> str:
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass
class JsonHttp:
    """GET JSON with retries on 5xx, 429 and connection errors."""

    timeout_s: float = 30.0
    retries: int = 2
    backoff_s: float = 1.0

    def get(self, url: str, headers: Mapping[str, str] | None = None, auth_hint: str = "") -> Any:
        req_headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        attempts = max(0, self.retries) + 1
        last = ""
        last_status: int | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff_s * attempt)
            request = urllib.request.Request(url, headers=req_headers, method="GET")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                    body = resp.read()
            except urllib.error.HTTPError as exc:
                body = exc.read() if exc.fp is not None else b""
                status = exc.code
                if status in (401, 403):
                    hint = f"; {auth_hint}" if auth_hint else ""
                    raise GridDataError(
                        url, None, None, f"authentication failed (HTTP {status}: {_excerpt(body)}){hint}",
                        status=status,
                    ) from None
                if status == 429 or status >= 500:
                    last_status = status
                    last = f"HTTP {status}: {_excerpt(body)}"
                    continue
                raise GridDataError(
                    url, None, None, f"request rejected (HTTP {status}: {_excerpt(body)})", status=status
                ) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                last_status = None
                last = f"cannot reach server: {reason}"
                continue
            try:
                return json.loads(body)
            except ValueError:
                raise GridDataError(url, None, None, f"response is not JSON: {_excerpt(body)!r}") from None
        if last_status == 429:
            what = "rate limited"
        elif last_status is not None:
            what = "server error"
        else:
            what = "request failed"
        raise GridDataError(url, None, None, f"{what} after {attempts} attempt(s): {last}", status=last_status)
