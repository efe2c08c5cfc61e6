"""Fault campaign, aggregator side: hostile stores, a +Inf increase, implausible inputs, unusable databases, /api/plan.

The faults that need telemetry run against the campaign's clean Prometheus (or a copy of its backfill with
one sample turned to +Inf); every recovered database must give exactly the clean run's totals. Servers
listen on 127.0.0.1 only, and every loop is bounded in bytes and seconds.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fault_common import (
    CLI,
    RANGE,
    START,
    cli_aggregate,
    db_totals,
    ingest_lib,
    last_line,
    measured_child,
    open_db,
    same_totals,
    windows_committed,
)
from scale_common import grid_dir, prometheus_server, promtool_import, run_child, write_facility

DRIP_DEADLINE_S = 6.0   # the aggregator's whole-request deadline for the drip (the CLI's default is 60 s)
FLOOD_BYTES = 300 << 20
REPLY_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
CLOSE = b"Connection: close\r\n"
DRIP_STORE_MAX_S = 15.0   # how long the dripping store keeps going at most, whatever the client does


# --- 7. a dripping store and a flooding store -------------------------------------------------------------
class HostileStore:
    """A raw-socket 'store' on 127.0.0.1 that answers every request with ``send(conn, store)``.

    It stops when closed or after ``max_seconds``, whichever comes first; ``sent`` counts body bytes."""

    def __init__(self, send: Any, max_seconds: float) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.send, self.sent = send, 0
        self.stop_at = time.monotonic() + max_seconds
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def running(self) -> bool:
        return not self.closed.is_set() and time.monotonic() < self.stop_at

    def _serve(self) -> None:
        while self.running():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    self.send(conn, self)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        self.thread.join(5)


def drip_with(head: bytes) -> Any:
    """A store answer: ``head``, a Content-Length of 100 000, then one byte every 2 s until the client leaves
    or the store closes."""
    def drip(conn: socket.socket, store: HostileStore) -> None:
        conn.sendall(head + b"Content-Length: 100000\r\n\r\n")
        while store.running():
            conn.sendall(b" ")
            store.sent += 1
            store.closed.wait(2.0)
    return drip


def flood(conn: socket.socket, store: HostileStore) -> None:
    """No Content-Length, then 300 MB of blanks in 1 MiB writes until the client leaves."""
    conn.sendall(REPLY_HEAD + CLOSE + b"\r\n")
    chunk = b" " * (1 << 20)
    while store.sent < FLOOD_BYTES and store.running():
        conn.sendall(chunk)
        store.sent += len(chunk)


def hostile_store_run(send: Any, run: Any, max_seconds: float = 120) -> dict[str, Any]:
    """Serve ``send`` while ``run(url)`` goes against it: its outcome, its seconds, what the store sent."""
    store = HostileStore(send, max_seconds=max_seconds)
    try:
        started = time.perf_counter()
        out: dict[str, Any] = run(store.url)
        out["seconds"] = time.perf_counter() - started
    finally:
        store.close()
    out["store_sent_bytes"] = store.sent
    return out


def recovery(good_url: str, config: Path, db: Path, baseline: dict[str, float]) -> dict[str, Any]:
    """The next `wattfleet aggregate` against a good store, on the same database."""
    again = cli_aggregate(good_url, config, db)
    return {"next_run_rc": again.returncode,
            "totals_equal": again.returncode == 0 and same_totals(db_totals(db), baseline)}


def dripping_store(work: Path, config: Path, good_url: str, baseline: dict[str, float]) -> dict[str, Any]:
    """A byte every 2 s, with a keep-alive answer and with ``Connection: close``; then a good store."""
    from wattfleet.aggregator.ingest.telemetry import TelemetrySourceError
    out: dict[str, Any] = {"deadline_s": DRIP_DEADLINE_S, "store_gives_up_after_s": DRIP_STORE_MAX_S}
    for case, head in (("keep_alive", REPLY_HEAD), ("connection_close", REPLY_HEAD + CLOSE)):
        db = work / f"drip-{case}.duckdb"

        def run(url: str) -> dict[str, Any]:
            try:
                ingest_lib(url, config, db, retries=0, timeout=DRIP_DEADLINE_S)   # noqa: B023 - called at once
                return {"error": ""}
            except TelemetrySourceError as exc:
                return {"error": str(exc)[:300].replace(url, "http://127.0.0.1:PORT")}

        out[case] = hostile_store_run(drip_with(head), run, DRIP_STORE_MAX_S)
        out[case]["windows_written"] = windows_committed(db)
        out[case].update(recovery(good_url, config, db, baseline))
    return out


def flooding_store(work: Path, config: Path, good_url: str, baseline: dict[str, float]) -> dict[str, Any]:
    db = work / "flood.duckdb"

    def run(url: str) -> dict[str, Any]:
        res, peak = measured_child(CLI + ["aggregate", "--config", str(config), "--db", str(db), "--prometheus", url,
                                          "--from", RANGE[0].isoformat() + "Z", "--to", RANGE[1].isoformat() + "Z",
                                          "--retries", "0", "--no-progress"], timeout=300)
        return {"rc": res.rc, "error": last_line(res.stderr).replace(url, "http://127.0.0.1:PORT").replace(
            str(work), "<work>"), "peak_rss_mb": peak}

    out = hostile_store_run(flood, run)
    out.update({"windows_written": windows_committed(db)})
    out.update(recovery(good_url, config, db, baseline))
    return out


# --- 8. a +Inf increase in the store ---------------------------------------------------------------------
def with_inf_sample(clean_om: Path, out: Path, series: str, node: str, at: datetime) -> str:
    """Copy the backfill with one sample of ``series`` on ``node`` at ``at`` set to +Inf; returns that line."""
    stamp = f" {at.replace(tzinfo=timezone.utc).timestamp():.0f}\n"
    changed = ""
    with open(clean_om) as src, open(out, "w") as dst:
        for line in src:
            if not changed and line.startswith(series + "{") and f'node="{node}"' in line and line.endswith(stamp):
                head = line.rsplit(" ", 2)[0]
                line = f"{head} +Inf{stamp}"
                changed = line.strip()
            dst.write(line)
    return changed


def inf_increase(work: Path, config: Path, clean_om: Path) -> dict[str, Any]:
    from wattfleet.core import catalog
    at = START + timedelta(hours=2, minutes=30)
    om = work / "inf.om"
    line = with_inf_sample(clean_om, om, catalog.GPU_ENERGY.series, "sim-0003", at)
    gpu = line.split('gpu="')[1].split('"')[0] if line else "?"
    injected = f"{catalog.GPU_ENERGY.series}{{node=sim-0003,gpu={gpu}}} = +Inf at {at:%H:%M} UTC"
    prom = prometheus_server()
    promtool_import(om, prom.dir / "data")
    db = work / "inf.duckdb"
    prom.start(timeout=120)
    try:
        res = cli_aggregate(prom.url, config, db)
        error = last_line(res.stderr).replace(prom.url, "http://127.0.0.1:PORT")
    finally:
        prom.__exit__(None, None, None)
    con = open_db(db)
    try:
        hours = [str(r[0]) for r in con.execute("SELECT hour_utc FROM ingest_window ORDER BY 1").fetchall()]
        bad_rows = con.execute("SELECT count(*) FROM stg_energy_hourly WHERE hour_utc = ?",
                               [START + timedelta(hours=2)]).fetchone()
    finally:
        con.close()
    return {"injected": injected, "rc": res.returncode, "error": error[:400], "windows_committed": hours,
            "rows_of_the_inf_hour": bad_rows[0] if bad_rows else None}


# --- 9. implausible grid intensity and PUE; a gap with fill: [none] --------------------------------------
def grid_copy(work: Path, name: str, edit: Any) -> Path:
    """CISO.csv with ``edit(lines)`` applied, written as ``name``."""
    lines = (grid_dir() / "CISO.csv").read_text().splitlines(keepends=True)
    path = work / name
    path.write_text("".join(edit(lines)))
    return path


def row_of(lines: list[str], stamp: str) -> int:
    return next(i for i, ln in enumerate(lines) if ln.startswith(stamp))


def set_avg_ci(lines: list[str]) -> list[str]:
    i = row_of(lines, "2022-07-01 02:00:00")
    cells = lines[i].rstrip("\n").split(",")
    cells[-1] = "1e9"
    return lines[:i] + [",".join(cells) + "\n"] + lines[i + 1:]


def drop_hours(lines: list[str]) -> list[str]:
    """The rows labelled 02:00, 03:00 and 04:00 of 2022-07-01 missing: the hours 01:00 to 03:59 (EIA-930
    labels an hour by its end, docs/accounting.md 5.1; runs before that reading named 02:00 to 04:59)."""
    i = row_of(lines, "2022-07-01 02:00:00")
    return lines[:i] + lines[i + 3:]


def refused_run(good_url: str, config: Path, db: Path, work: Path) -> dict[str, Any]:
    res = cli_aggregate(good_url, config, db)
    return {"rc": res.returncode, "error": last_line(res.stderr).replace(str(work), "<work>"),
            "windows_written": windows_committed(db)}


def implausible_inputs(work: Path, good_url: str, baseline: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    bad_grid = grid_copy(work, "CISO-1e9.csv", set_avg_ci)
    cfg = write_facility(work / "facility-1e9.yaml", grid_files={"CISO": bad_grid})
    fixed = write_facility(work / "facility-fixed.yaml")
    out["avg_ci_1e9"] = refused_run(good_url, cfg, work / "ci.duckdb", work)
    out["avg_ci_1e9"].update(recovery(good_url, fixed, work / "ci.duckdb", baseline))
    cfg = write_facility(work / "facility-pue.yaml")
    cfg.write_text(cfg.read_text().replace("pue: 1.3", "pue: 1000000", 1))
    out["pue_1e6"] = refused_run(good_url, cfg, work / "pue.duckdb", work)
    out["pue_1e6"].update(recovery(good_url, fixed, work / "pue.duckdb", baseline))
    gap = grid_copy(work, "CISO-gap.csv", drop_hours)
    cfg = write_facility(work / "facility-gap.yaml", grid_files={"CISO": gap})
    cfg.write_text(cfg.read_text().replace(f"path: {gap}, fill: [previous_day_same_hour, linear]",
                                           f"path: {gap}, fill: [none]"))
    db = work / "gap.duckdb"
    out["gap_fill_none"] = refused_run(good_url, cfg, db, work)
    out["gap_fill_none"].update(recovery(good_url, fixed, db, baseline))
    return out


# --- 10. unusable databases ----------------------------------------------------------------------------
def unusable_databases(work: Path, config: Path, good_url: str) -> dict[str, Any]:
    from wattfleet.aggregator.store.database import open_store
    from wattfleet.aggregator.store.migrations import LATEST_VERSION
    corrupt = work / "corrupt.duckdb"
    corrupt.write_bytes(b"this is not a database\n" * 1000)
    newer = work / "newer.duckdb"
    con = open_store(newer)
    con.execute("INSERT INTO schema_version VALUES (?, 'from_the_future', now())", [LATEST_VERSION + 1])
    con.close()
    out: dict[str, Any] = {}
    for name, db in (("corrupt", corrupt), ("newer_schema", newer)):
        before = db.read_bytes()
        for command, args in (("report", ["report", "--db", str(db), "--month", "2022-07", "--out",
                                          str(work / "report")]),
                              ("aggregate", ["aggregate", "--db", str(db), "--config", str(config), "--prometheus",
                                             good_url, "--from", RANGE[0].isoformat() + "Z", "--to",
                                             RANGE[1].isoformat() + "Z", "--no-progress"])):
            res = run_child(CLI + args, timeout=120)
            out[f"{name}/{command}"] = {"rc": res.rc, "error": last_line(res.stderr).replace(str(work), "<work>"),
                                        "traceback": "Traceback" in res.stderr}
        out[f"{name}/file_unchanged"] = db.read_bytes() == before
    return out


# --- 11. /api/plan under hostile queries ---------------------------------------------------------------
class SlowLoader:
    """The real grid loader, ``seconds`` slower per site, counting its calls (to see a plan stop)."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.calls = seconds, 0

    def __call__(self, spec: Any, start: datetime, end: datetime) -> Any:
        from wattfleet.aggregator.grid import load_intensity
        self.calls += 1
        time.sleep(self.seconds)
        return load_intensity(spec, start, end).rows


def strict_json(body: bytes) -> bool:
    def refuse(token: str) -> float:
        raise ValueError(token)
    try:
        json.loads(body, parse_constant=refuse)
        return True
    except ValueError:
        return False


def plan_get(port: int, query: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/plan?{urlencode(query)}", timeout=60) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    seconds = time.perf_counter() - started
    message = ""
    if status != 200 and strict_json(body):
        message = str(json.loads(body).get("error", ""))[:200]
    return {"status": status, "seconds": seconds, "strict_json": strict_json(body), "bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest()[:16], "error": message}


PLAN_QUERY = {"duration": "6h", "energy": "1.2MWh", "after": "2022-07-01T00:00:00Z", "by": "2022-07-03"}


def plan_server(config: Path, loader: Any = None) -> tuple[Any, Any]:
    from wattfleet.aggregator.config.load import load_facility
    from wattfleet.aggregator.planning.api import PLAN_PATH, plan_route
    from wattfleet.core.http import HttpServer, Routes
    endpoint = plan_route(load_facility(config), loader=loader)
    server = HttpServer("127.0.0.1:0", Routes(exact={PLAN_PATH: endpoint}))
    server.start()
    return server, endpoint


def plan_abandoned(config: Path) -> dict[str, Any]:
    """Three sites at 1 s each; the client leaves after 0.5 s. The worker must stop at its next site."""
    loader = SlowLoader(1.0)
    server, endpoint = plan_server(config, loader)
    try:
        query = {**PLAN_QUERY, "sites": "dc-ciso,dc-bpat,dc-miso"}
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(f"GET /api/plan?{urlencode(query)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            time.sleep(0.5)
        deadline = time.monotonic() + 5
        while endpoint.stats["abandoned"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        seen = time.monotonic() - deadline + 5
        time.sleep(3.5)   # as long as the whole plan would have taken
        return {"abandoned": endpoint.stats["abandoned"], "noticed_after_s": seen + 0.5,
                "sites_loaded": loader.calls, "of_sites": 3, "stats": dict(endpoint.stats)}
    finally:
        server.stop()


def plan_hostile(config: Path) -> dict[str, Any]:
    server, endpoint = plan_server(config)
    try:
        out = {"one_site": plan_get(server.port, {**PLAN_QUERY, "sites": "dc-ciso"}),
               "site_x400": plan_get(server.port, {**PLAN_QUERY, "sites": ",".join(["dc-ciso"] * 400)}),
               "energy_1e400": plan_get(server.port, {**PLAN_QUERY, "sites": "dc-ciso", "energy": "1e400"}),
               "energy_1e400kwh": plan_get(server.port, {**PLAN_QUERY, "sites": "dc-ciso", "energy": "1e400kWh"})}
    finally:
        server.stop()
    out["site_x400"]["same_body_as_one_site"] = out["site_x400"]["sha256"] == out["one_site"]["sha256"]
    out["client_leaves"] = plan_abandoned(config)
    return out


def run_all(work: Path, config: Path, good_url: str, baseline: dict[str, float], clean_om: Path
            ) -> dict[str, Any]:
    """Every aggregator-side fault above, each in its own folder under ``work``."""
    out: dict[str, Any] = {}
    steps: dict[str, Any] = {
        "dripping_store": lambda d: dripping_store(d, config, good_url, baseline),
        "flooding_store": lambda d: flooding_store(d, config, good_url, baseline),
        "inf_increase": lambda d: inf_increase(d, config, clean_om),
        "implausible_inputs": lambda d: implausible_inputs(d, good_url, baseline),
        "unusable_databases": lambda d: unusable_databases(d, config, good_url),
        "plan_hostile": lambda d: plan_hostile(config),
    }
    for name, step in steps.items():
        folder = work / name
        folder.mkdir()
        started = time.perf_counter()
        out[name] = step(folder)
        out[name]["campaign_seconds"] = time.perf_counter() - started
    return out


if __name__ == "__main__":
    sys.exit("run through bench/fault_campaign.py")
