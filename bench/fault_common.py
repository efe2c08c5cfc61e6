"""Shared pieces of the fault campaign's modules: the fleet's time range, the aggregator run as a library and
as the CLI, and the database totals compared with the fault-free run."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from scale_common import ChildResult, run_child

TIME = Path("/usr/bin/time")
PEAK_TAG = "wattfleet-peak-rss-kb"

NODES, GPUS, STEP = 8, 2, 60.0
START = datetime(2022, 7, 1)
HOURS = 6
# The ingest range pads the fleet's span by an hour each side, so skewed clocks stay inside it.
RANGE = (START - timedelta(hours=1), START + timedelta(hours=HOURS + 1))
CLI = [sys.executable, "-c", "import sys; from wattfleet.cli import main; sys.exit(main(sys.argv[1:]))"]
TOTAL_KEYS = ("it_kwh", "facility_kwh", "scope1_g", "scope2_location_g", "scope2_market_g", "scope3_embodied_g",
              "scope3_upstream_g", "water_onsite_l", "water_offsite_l", "cfe_kwh", "rows")


def iso(dt: datetime) -> str:
    return dt.replace(tzinfo=timezone.utc).isoformat()


def open_db(path: Path) -> Any:
    from wattfleet.aggregator.store.database import open_store
    return open_store(path)


def db_totals(path: Path) -> dict[str, float]:
    from wattfleet.aggregator.ingest.run import totals
    con = open_db(path)
    try:
        return totals(con)
    finally:
        con.close()


def per_node(path: Path) -> dict[str, dict[str, float]]:
    con = open_db(path)
    try:
        rows = con.execute("SELECT node, component, sum(joules) FROM stg_energy_hourly GROUP BY ALL").fetchall()
    finally:
        con.close()
    out: dict[str, dict[str, float]] = {}
    for node, comp, joules in rows:
        out.setdefault(node, {"gpu": 0.0, "cpu": 0.0})[comp] = joules
    return out


def ingest_lib(url: str, config: Path, db: Path, name: str = "prometheus", **kw: Any) -> Any:
    from wattfleet.aggregator.config.load import load_facility
    from wattfleet.aggregator.ingest.prometheus import PrometheusSource
    from wattfleet.aggregator.ingest.run import ingest
    source = PrometheusSource(url, name=name, page_hours=kw.pop("page_hours", 24), retries=kw.pop("retries", 3),
                              backoff_seconds=kw.pop("backoff_seconds", 1.0), timeout=kw.pop("timeout", 60.0))
    con = open_db(db)
    try:
        start = kw.pop("start", RANGE[0])
        result = ingest(con, load_facility(config), source, start, RANGE[1], lookback_hours=3,
                        now=RANGE[1] + timedelta(hours=1), **kw)
        return result, source
    finally:
        con.close()


def cli_aggregate(url: str, config: Path, db: Path, from_: datetime | None = RANGE[0],
                  preexec: Any = None, extra: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = CLI + ["aggregate", "--config", str(config), "--db", str(db), "--prometheus", url,
                 "--to", iso(RANGE[1]), "--no-progress"] + (extra or [])
    if from_ is not None:
        cmd += ["--from", iso(from_)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, preexec_fn=preexec)


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def same_totals(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(a[k] == b[k] for k in TOTAL_KEYS)


def windows_committed(db: Path) -> int:
    """How many hour windows the database holds (0 when the file was never created)."""
    if not db.exists():
        return 0
    con = open_db(db)
    try:
        row = con.execute("SELECT count(*) FROM ingest_window").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def measured_child(cmd: list[str], timeout: float = 120) -> tuple[ChildResult, float | None]:
    """Run ``cmd`` under /usr/bin/time: its result and its own peak RSS in MB.

    wait4's rusage of a direct child keeps the peak of the forked copy of this (large) process from before
    exec; /usr/bin/time is small, so the child it forks reports its own peak. None without /usr/bin/time."""
    if not TIME.exists():
        return run_child(cmd, timeout=timeout), None
    res = run_child([str(TIME), "-f", f"{PEAK_TAG} %M"] + cmd, timeout=timeout)
    lines = res.stderr.splitlines()
    peak = [ln for ln in lines if ln.startswith(PEAK_TAG)]
    res.stderr = "\n".join(ln for ln in lines if not ln.startswith(PEAK_TAG) and not ln.startswith("Command exited"))
    return res, (int(peak[-1].split()[1]) / 1024 if peak else None)
