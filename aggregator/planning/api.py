"""``GET /api/plan`` on ``wattfleet serve``: the planner over HTTP, same JSON as ``wattfleet plan --json``.

``serve`` answers whoever reaches it, so a request's cost is bounded before
and while it runs: the query is checked against :class:`PlanLimits` first (a
400 naming the parameter; repeated sites count once), at most
``max_concurrent`` plans run at a time (429 beyond), each has a deadline
(503 when it passes), and a plan whose client has left stops at the next
site instead of finishing for nobody. Bodies are strict JSON: a non-finite
number is an error, never ``Infinity``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from wattfleet.aggregator.config.model import FacilityConfig
from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.planning.errors import PlanError
from wattfleet.aggregator.planning.guard import ClientGone, DeadlineExceeded, PlanStopped, WorkGuard
from wattfleet.aggregator.planning.limits import PlanLimits
from wattfleet.aggregator.planning.plan import plan_json
from wattfleet.aggregator.planning.query import PLAN_PARAMS, PlanQuery, parse_plan_query
from wattfleet.aggregator.planning.series import Loader
from wattfleet.core.routes import JSON, Request, Response

__all__ = ["PLAN_PARAMS", "PLAN_PATH", "PlanEndpoint", "plan_http", "plan_route"]

log = logging.getLogger(__name__)

UTC = timezone.utc
PLAN_PATH = "/api/plan"
WATCH_SECONDS = 0.05  # how often the request thread looks at its client and the deadline
DEFAULT_LIMITS = PlanLimits()


def plan_http(cfg: FacilityConfig, query: str, loader: Loader | None = None, *,
              limits: PlanLimits = DEFAULT_LIMITS) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for ``/api/plan?duration=6h&energy=1.2MWh&sites=a,b&by=2026-11-30``.

    Optional: ``after`` (earliest start), ``mode`` (auto|forecast|history),
    ``top`` (candidates listed), ``cost=SITE:PRICE`` (repeatable or
    comma-separated; price per facility kWh, over the config's). The body is
    the same JSON as ``wattfleet plan --json``; a bad request is 400 and a
    grid source that cannot be read is 502, both as ``{"error": message}``.
    Computed in the caller's thread, without deadline or concurrency bound:
    those are :class:`PlanEndpoint`'s.
    """
    try:
        parsed = parse_plan_query(query, limits, datetime.now(UTC))
    except PlanError as exc:
        return 400, {"error": str(exc)}
    return answer(cfg, parsed, loader)


def answer(cfg: FacilityConfig, q: PlanQuery, loader: Loader | None = None,
           checkpoint: Callable[[], None] | None = None) -> tuple[int, dict[str, Any]]:
    """The plan for a checked query; ``checkpoint`` may raise :class:`PlanStopped` between sites."""
    try:
        body = plan_json(cfg, q.sites, q.duration_hours, q.energy_kwh, q.deadline, earliest=q.earliest,
                         mode=q.mode, top=q.top, costs=q.costs, loader=loader, checkpoint=checkpoint)
    except PlanError as exc:
        return 400, {"error": str(exc)}
    except (GridDataError, OSError) as exc:
        return 502, {"error": f"grid intensity: {exc}"}
    return 200, body


def encode(body: dict[str, Any]) -> bytes:
    """Strict JSON (RFC 8259 has no NaN or Infinity): a non-finite number raises ValueError."""
    return (json.dumps(body, indent=2, allow_nan=False) + "\n").encode()


def _json(status: int, body: dict[str, Any], retry_after: bool = False) -> Response:
    return Response(status, encode(body), JSON, {"Retry-After": "1"} if retry_after else {})


class PlanEndpoint:
    """The ``GET /api/plan`` handler: bounded, deadlined, cancelled when its client leaves.

    ``stats`` counts outcomes (``ok``, ``rejected``, ``busy``, ``timed_out``,
    ``abandoned``, ``failed``) so that operators and tests can see them.
    """

    def __init__(self, cfg: FacilityConfig, *, limits: PlanLimits = DEFAULT_LIMITS, loader: Loader | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.limits, self.loader, self._clock = cfg, limits, loader, clock
        self._slots = threading.BoundedSemaphore(limits.max_concurrent)
        self._lock = threading.Lock()
        self.stats = dict.fromkeys(("ok", "rejected", "busy", "timed_out", "abandoned", "failed"), 0)

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.stats[outcome] += 1

    def __call__(self, request: Request) -> Response:
        try:
            query = parse_plan_query(request.query, self.limits, datetime.now(UTC))
        except PlanError as exc:
            self._count("rejected")
            return _json(400, {"error": str(exc)})
        if not self._slots.acquire(blocking=False):
            self._count("busy")
            return _json(429, {"error": f"{self.limits.max_concurrent} plans are being computed; retry shortly"},
                         retry_after=True)
        guard = WorkGuard(self.limits.deadline_seconds, self._clock)
        done = threading.Event()
        outcome: dict[str, Any] = {}
        worker = threading.Thread(target=self._work, args=(query, guard, outcome, done), name="wattfleet-plan",
                                  daemon=True)
        try:
            worker.start()  # the slot is released by the worker, so a plan cut short still counts until it stops
        except RuntimeError:  # no thread to be had: the slot was never handed over
            self._slots.release()
            raise
        return self._wait(request, guard, outcome, done)

    def _work(self, query: PlanQuery, guard: WorkGuard, outcome: dict[str, Any], done: threading.Event) -> None:
        try:
            status, body = answer(self.cfg, query, self.loader, guard.check)
            try:
                outcome["response"] = (status, encode(body))
            except ValueError:
                log.error("plan for %s has a non-finite number", ",".join(query.sites))
                outcome["response"] = (500, encode({"error": "the plan has a non-finite number"}))
        except PlanStopped as exc:
            outcome["stopped"] = exc
            log.info("plan for %s stopped after %d unit(s) of work: %s", ",".join(query.sites), guard.units, exc)
        except Exception:
            log.exception("plan for %s failed", ",".join(query.sites))
            outcome["response"] = (500, encode({"error": "internal error while planning"}))
        finally:
            self._slots.release()
            done.set()

    def _wait(self, request: Request, guard: WorkGuard, outcome: dict[str, Any], done: threading.Event) -> Response:
        """Wait for the worker while watching the client and the deadline; answer what happened."""
        timed_out = _json(503, {"error": f"the plan did not finish within {self.limits.deadline_seconds:g} s"},
                          retry_after=True)
        while not done.wait(WATCH_SECONDS):
            if request.client_gone():
                guard.cancel(ClientGone("the client closed the connection"))
                self._count("abandoned")
                return _json(503, {"error": "client gone"})  # nobody reads it; the server closes the socket
            if guard.remaining() <= 0:
                guard.cancel(DeadlineExceeded("deadline passed"))
                self._count("timed_out")
                return timed_out
        if "stopped" in outcome:  # the worker saw the deadline first, at a checkpoint
            self._count("timed_out")
            return timed_out
        status, body = outcome["response"]
        self._count("ok" if status == 200 else "failed" if status >= 500 else "rejected")
        return Response(status, body, JSON)


def plan_route(cfg: FacilityConfig, *, limits: PlanLimits = DEFAULT_LIMITS, loader: Loader | None = None
               ) -> PlanEndpoint:
    """The ``GET /api/plan`` handler that ``wattfleet serve`` mounts beside ``/metrics``."""
    return PlanEndpoint(cfg, limits=limits, loader=loader)
