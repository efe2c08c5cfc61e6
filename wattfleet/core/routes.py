"""What a wattfleet HTTP endpoint answers: requests, responses, and the table that maps paths to handlers.

Handlers get a :class:`Request` and return a :class:`Response`; they never see
sockets, so the exporter, ``serve`` and the simulator only say which paths
they answer (:class:`Routes`), and :mod:`.http` serves them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from wattfleet.core.exposition import Snapshot

TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
JSON = "application/json"


@dataclass(frozen=True)
class Request:
    """What a handler may look at: method, path (without query), raw query string, headers.

    ``client_gone()`` is true once the client has closed its side, so a costly
    handler can stop working for nobody.
    """

    method: str
    path: str
    query: str
    headers: Message
    client_gone: Callable[[], bool] = field(default=lambda: False, compare=False)
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = TEXT
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]

NOT_FOUND = Response(404, b"Not Found\n")
# Kubernetes probes cannot send credentials, and these answer only "alive" / "ready".
PROBE_PATHS = frozenset({"/-/healthy", "/-/ready"})
UNAUTHORIZED = Response(401, b"Unauthorized\n", headers={"WWW-Authenticate": 'Basic realm="wattfleet"'})
MAX_BODY_BYTES = 1 << 20
TOO_MANY = Response(429, b"Too Many Requests\n", headers={"Retry-After": "1"})


@dataclass
class Routes:
    """Exact paths first, then the longest matching prefix (``/nodes/`` style mounts)."""

    exact: dict[str, Handler] = field(default_factory=dict)
    prefixes: dict[str, Handler] = field(default_factory=dict)

    def resolve(self, path: str) -> Handler | None:
        handler = self.exact.get(path)
        if handler is not None:
            return handler
        for prefix in sorted(self.prefixes, key=len, reverse=True):
            if path.startswith(prefix):
                return self.prefixes[prefix]
        return None



def snapshot_routes(get_snapshot: Callable[[], Snapshot | None], title: str = "wattfleet exporter",
                    ready: Callable[[], tuple[bool, str]] | None = None) -> Routes:
    """``/metrics`` (gzip when accepted), ``/-/healthy``, ``/-/ready`` and a landing page for one snapshot.

    ``ready`` overrides readiness (the exporter reports a stale snapshot as not ready); by
    default a source is ready once it has a snapshot.
    """
    landing = (f"<html><head><title>{title}</title></head><body>\n"
               f"<h1>{title}</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n").encode()

    def metrics(request: Request) -> Response:
        snapshot = get_snapshot()
        if snapshot is None:
            return Response(503, b"no sample taken yet\n")
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return Response(200, snapshot.gzipped(), CONTENT_TYPE_LATEST, {"Content-Encoding": "gzip"})
        return Response(200, snapshot.body, CONTENT_TYPE_LATEST)

    def readiness(request: Request) -> Response:
        ok, why = ready() if ready is not None else (get_snapshot() is not None, "no sample taken yet")
        return Response(200, b"OK\n") if ok else Response(503, f"not ready: {why}\n".encode())

    return Routes(exact={
        "/metrics": metrics,
        "/-/healthy": lambda request: Response(200, b"OK\n"),
        "/-/ready": readiness,
        "/": lambda request: Response(200, landing, HTML),
    })
