"""Fetching one engine's /metrics page on a thread of its own, with a hard deadline.

An inference engine under load can answer its /metrics page slowly or not at
all; the hardware sampler must never wait for it. Each engine gets a thread
that scrapes when kicked and leaves the outcome for the sensor to collect; the
deadline covers the whole exchange (connect, headers and every body read), not
just each socket operation, so a server trickling bytes cannot hold it.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from wattfleet.exporter.inference.config import EngineConfig
from wattfleet.exporter.inference.parsers import PARSERS, UNKNOWN_MODEL, EngineReading, ParseError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 << 20  # a vLLM page with many LoRA adapters is a few MB; garbage beyond this


class FetchError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


def fetch_metrics(url: str, timeout: float, max_bytes: int = MAX_BODY_BYTES) -> str:
    """GET ``url`` within ``timeout`` seconds in total; raises :class:`FetchError`."""
    deadline = time.monotonic() + timeout
    u = urlparse(url)
    conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(u.hostname or "", u.port, timeout=timeout)
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchError("timeout", f"no complete answer within {timeout:g}s")
        return left

    try:
        conn.connect()
        sock = conn.sock  # kept: the connection drops its reference once the response owns the socket
        sock.settimeout(remaining())
        conn.request("GET", path, headers={"Accept": "text/plain;version=0.0.4", "User-Agent": "wattfleet"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise FetchError("http_status", f"HTTP {resp.status} {resp.reason}")
        chunks: list[bytes] = []
        size = 0
        while True:
            sock.settimeout(remaining())
            chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise FetchError("too_large", f"page larger than {max_bytes} bytes")
            chunks.append(chunk)
        remaining()
    except FetchError:
        raise
    except TimeoutError:
        raise FetchError("timeout", f"no complete answer within {timeout:g}s") from None
    except ConnectionRefusedError as exc:
        raise FetchError("connection_refused", str(exc)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError("unreachable", f"{type(exc).__name__}: {exc}") from None
    finally:
        conn.close()
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FetchError("parse_error", f"page is not UTF-8 text: {exc}") from None


@dataclass
class ScrapeOutcome:
    """One scrape: ``tag`` names the sampler tick that asked for it (pairs it with that tick's energy)."""

    tag: int
    reading: EngineReading | None
    error: str | None = None
    detail: str = ""
    wall_time: float | None = None  # Unix time the scrape began: a restarted engine's start time is later


class EngineScraper:
    """Scrapes one engine whenever :meth:`kick` is called; outcomes are collected with :meth:`drain`."""

    def __init__(self, cfg: EngineConfig, fetch: Callable[[str, float], str] = fetch_metrics) -> None:
        self.cfg = cfg
        self.parse = PARSERS[cfg.engine]
        self.fetch = fetch
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._done_tag = 0
        self._tag = 0
        self._outcomes: list[ScrapeOutcome] = []
        self._thread: threading.Thread | None = None
        self._logged: str | None = None
        # TGI's page names no model; its /info does. Asked once, after the first good scrape; None = not yet.
        self._info_model: str | None = None if cfg.engine == "tgi" and cfg.model is None else ""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"wattfleet-scrape-{self.cfg.endpoint}", daemon=True)
        self._thread.start()

    def kick(self, tag: int) -> None:
        with self._lock:
            self._tag = tag
        self._kick.set()

    def wait(self, tag: int, timeout: float) -> bool:
        """Block until the scrape asked for with ``tag`` (or a later one) finished; False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: self._done_tag >= tag, timeout)

    def drain(self) -> list[ScrapeOutcome]:
        with self._lock:
            out, self._outcomes = self._outcomes, []
        return out

    def scrape_once(self, tag: int) -> ScrapeOutcome:
        wall = time.time()
        try:
            reading = self.parse(self.fetch(self.cfg.url, self.cfg.timeout_seconds))
            if self._info_model is None:
                self._info_model = self.model_from_info()
            if self._info_model and UNKNOWN_MODEL in reading.models:
                reading.models[self._info_model] = reading.models.pop(UNKNOWN_MODEL)
            outcome = ScrapeOutcome(tag, reading, wall_time=wall)
        except (FetchError, ParseError) as exc:
            outcome = ScrapeOutcome(tag, None, exc.reason, str(exc))
        except Exception as exc:  # a parser bug must not kill the thread
            log.exception("scraping %s failed", self.cfg.url)
            outcome = ScrapeOutcome(tag, None, "scrape_error", repr(exc))
        if outcome.error != self._logged:  # log transitions only, not every failed scrape
            if outcome.error:
                log.warning("%s engine at %s: %s", self.cfg.engine, self.cfg.url, outcome.detail)
            else:
                log.info("%s engine at %s answers again", self.cfg.engine, self.cfg.url)
            self._logged = outcome.error
        return outcome

    def model_from_info(self) -> str:
        """``model_id`` from TGI's ``/info`` next to its ``/metrics``; "" (keep ``unknown``) when it has none.

        Asked once: a name that changed later would split the engine's series
        in two, so the first answer holds (set ``model:`` in the config to be explicit).
        """
        u = urlparse(self.cfg.url)
        info = u._replace(path=u.path.rsplit("/", 1)[0] + "/info", query="").geturl()
        try:
            model = json.loads(self.fetch(info, self.cfg.timeout_seconds)).get("model_id")
        except (FetchError, ValueError, AttributeError) as exc:
            log.warning("%s: no model name from %s (%s); its series say model=%r. TGI serves no /info on its "
                        "separate --prometheus-port: set 'model:' in this engine's inference config entry",
                        self.cfg.url, info, exc, UNKNOWN_MODEL)
            return ""
        return model.strip() if isinstance(model, str) else ""

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._kick.wait(timeout=1.0):
                continue
            self._kick.clear()
            if self._stop.is_set():
                break
            with self._lock:
                tag = self._tag
            outcome = self.scrape_once(tag)
            with self._done:
                self._outcomes.append(outcome)
                del self._outcomes[:-64]  # nobody collecting (sampler stalled): keep the newest
                self._done_tag = max(self._done_tag, tag)
                self._done.notify_all()

    def close(self) -> None:
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout=self.cfg.timeout_seconds + 1.0)
