"""Start a real Prometheus (Debian package) on 127.0.0.1 for tests and benchmarks.

No mocked API: tests talk to the real server through its HTTP API. The
binary comes from ``apt-get install prometheus`` (``.ci/run`` does that).
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def have_prometheus() -> bool:
    return Path(PROMETHEUS).exists() and Path(PROMTOOL).exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """A real server binary on 127.0.0.1 in a temp dir: started, polled until ready, stopped.

    Subclasses give ``name`` (log file and messages), ``ready_path`` and
    :meth:`argv`; this class owns the process, its log and the temp dir.
    """

    name = "server"
    ready_path = "/-/ready"
    # A server behind its own TLS or auth (a --web.config.file) is polled with these.
    ready_context: ssl.SSLContext | None = None
    ready_headers: dict[str, str] = {}

    def __init__(self, workdir: Path | None = None) -> None:
        """``workdir``: keep data and log there (kept afterwards); default a temp dir removed on exit."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        if workdir:
            self.dir = Path(workdir)
        else:
            self._dir = tempfile.TemporaryDirectory(prefix=f"wattfleet-{self.name}-")
            self.dir = Path(self._dir.name)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0):  # -> Self
        log = open(self.dir / f"{self.name}.log", "wb")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            try:
                ready = urllib.request.Request(f"{self.url}{self.ready_path}", headers=self.ready_headers)
                with urllib.request.urlopen(ready, timeout=1, context=self.ready_context) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s: {self.log_tail()}")

    def log_tail(self, n: int = 2000) -> str:
        try:
            return (self.dir / f"{self.name}.log").read_text()[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        """Stop the server and remove its temp dir (a ``workdir`` given to the constructor is kept)."""
        self.stop()
        if self._dir is not None:
            self._dir.cleanup()

    def __enter__(self):  # -> Self
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class PrometheusServer(LocalServer):
    """A throwaway Prometheus scraping ``targets`` (``host:port`` strings).

    ``scrape_interval`` may be sub-second for fast tests. ``rule_files`` are
    copied into the config. Use as a context manager; data lives in a temp dir.
    """

    name = "prometheus"

    def __init__(self, targets: Iterable[str] = (), scrape_interval: str = "1s",
                 rule_files: Iterable[str | Path] = (), job: str = "wattfleet",
                 extra_scrape_configs: list[dict[str, Any]] | None = None,
                 extra_args: Iterable[str] = ()) -> None:
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.rule_files = [str(p) for p in rule_files]
        self.job = job
        self.extra_scrape_configs = extra_scrape_configs or []
        self.extra_args = list(extra_args)
        super().__init__()

    def config(self) -> dict[str, Any]:
        scrape_configs: list[dict[str, Any]] = []
        if self.targets:
            scrape_configs.append({"job_name": self.job, "scrape_interval": self.scrape_interval,
                                   "scrape_timeout": self.scrape_interval,
                                   "static_configs": [{"targets": self.targets}]})
        scrape_configs.extend(self.extra_scrape_configs)
        return {"global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
                "rule_files": self.rule_files, "scrape_configs": scrape_configs}

    def argv(self) -> list[str]:
        cfg = self.dir / "prometheus.yml"
        cfg.write_text(yaml.safe_dump(self.config()))
        return [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
                "--web.enable-admin-api", *self.extra_args]

    # --- HTTP API ------------------------------------------------------------
    def api(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus API {path}: {body}")
        return body["data"]

    def query(self, expr: str, time_: float | None = None) -> list[dict[str, Any]]:
        return self.api("query", query=expr, time=time_)["result"]

    def wait_for(self, expr: str, timeout: float = 30.0, min_results: int = 1) -> list[dict[str, Any]]:
        """Poll an instant query until it returns at least ``min_results`` series."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if len(result) >= min_results:
                return result
            time.sleep(0.2)
        raise AssertionError(f"{expr!r} returned {len(result)} series after {timeout}s; log: {self.log_tail()}")

    def targets_up(self) -> list[dict[str, Any]]:
        return self.api("targets")["activeTargets"]
