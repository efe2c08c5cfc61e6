"""``wattfleet aggregate``, ``report`` and ``serve``: the aggregator's commands.

Each command's flags live in its own ``add_*_arguments`` function, the single
definition the Helm chart's tests read.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from wattfleet.aggregator.argtypes import header, int_range, iso_instant, month, positive_seconds, resolve_month
from wattfleet.aggregator.config.checker import FacilityConfigError
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.config.model import FacilityConfig
from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.grid.sources import zone_check
from wattfleet.aggregator.ingest.embedded import EmbeddedScraper, EmbeddedSource, split_targets
from wattfleet.aggregator.ingest.prometheus import DEFAULT_SHARD_NODES, MAX_POINTS_PER_SERIES, PrometheusSource
from wattfleet.aggregator.ingest.run import IngestRangeError, IngestResult, ingest, totals
from wattfleet.aggregator.ingest.store_client import StoreAuth
from wattfleet.aggregator.ingest.telemetry import TelemetrySourceError
from wattfleet.aggregator.outputs.report import ReportError, write_report
from wattfleet.aggregator.outputs.serve import AggregatorServer
from wattfleet.aggregator.store.database import StoreError, StoreLockedError, open_store
from wattfleet.aggregator.store.settings import DEFAULT_MEMORY_LIMIT, StoreSettings
from wattfleet.core.addresses import listen_address
from wattfleet.core.flags import add_deprecated_alias
from wattfleet.core.http import parse_listen_address
from wattfleet.core.logs import add_log_arguments
from wattfleet.core.signals import wait_for_stop_signal
from wattfleet.core.webconfig import WebConfigError, load_web_config

log = logging.getLogger(__name__)

DEFAULT_SERVE_PORT = 9881


def add_aggregate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, metavar="FILE",
                   help="facility config (YAML), see aggregator/config/facility.example.yaml")
    p.add_argument("--db", required=True, metavar="FILE", help="DuckDB database file (created and migrated if needed)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prometheus", metavar="URL",
                     help="PromQL-compatible base URL (Prometheus, VictoriaMetrics, Thanos, Mimir)")
    src.add_argument("--embedded-targets", action="append", metavar="HOST:PORT[,HOST:PORT]",
                     help="no Prometheus: scrape these exporters directly (repeatable, comma-separated)")
    p.add_argument("--from", dest="start", type=iso_instant, metavar="ISO",
                   help="first hour to ingest (default: watermark minus --lookback-hours, or a week back)")
    p.add_argument("--to", dest="end", type=iso_instant, metavar="ISO",
                   help="end of the last hour to ingest, exclusive (default: the last complete hour)")
    p.add_argument("--lookback-hours", type=int_range(0), default=3, metavar="N",
                   help="hours before the watermark re-read on every run, for late data (default 3)")
    p.add_argument("--page-hours", type=int_range(1, MAX_POINTS_PER_SERIES), default=24, metavar="N",
                   help="hours per query_range request (default 24)")
    p.add_argument("--retries", type=int_range(0), default=3, metavar="N",
                   help="retries per Prometheus request before the run stops, on timeouts, resets, 429 and 5xx, "
                        "with exponential backoff or the store's Retry-After if longer (default 3)")
    p.add_argument("--shard-nodes", type=int_range(0), default=DEFAULT_SHARD_NODES, metavar="N",
                   help="nodes per query: the nodes of each page are listed first and queried N at a time, so "
                        f"answers and memory stay bounded on any fleet; 0 = the whole fleet at once "
                        f"(default {DEFAULT_SHARD_NODES})")
    p.add_argument("--pre-aggregated", action="store_true",
                   help="read hourly energy recorded by the rule group `dashboards build` writes "
                        "(rules/wattfleet-hourly-energy.yaml) instead of evaluating increase() over raw counters")
    p.add_argument("--query-timeout", type=positive_seconds, default=60.0, metavar="SECONDS",
                   help="deadline of one whole request to the store, body included (default 60)")
    p.add_argument("--max-response-bytes", type=int_range(1), default=256 << 20, metavar="BYTES",
                   help="refuse an answer larger than this, while it is read (default 268435456: 256 MiB)")
    add_store_access_arguments(p)
    p.add_argument("--duckdb-memory-limit", metavar="SIZE",
                   help="DuckDB buffer pool limit, e.g. 512MB, 2GB; larger work spills to the temp directory "
                        f"(default: the config's store.memory_limit, else {DEFAULT_MEMORY_LIMIT})")
    p.add_argument("--duckdb-threads", type=int_range(1), metavar="N",
                   help="DuckDB threads (default: the config's store.threads, else the machine's cores)")
    p.add_argument("--duckdb-temp-directory", metavar="DIR",
                   help="where DuckDB spills (default: the config's store.temp_directory, else <db>.tmp)")
    p.add_argument("--scrape-interval", type=positive_seconds, default=15.0, metavar="SECONDS",
                   help="embedded mode: seconds between scrapes (default 15)")
    p.add_argument("--once", action="store_true",
                   help="embedded mode: scrape once, ingest completed hours and exit (default: run until stopped)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress: neither a bar (terminal) nor periodic progress log lines (elsewhere)")
    add_log_arguments(p)


def add_store_access_arguments(p: argparse.ArgumentParser) -> None:
    """How to reach a store behind authentication, TLS and tenancy (Mimir, Cortex, Thanos, VictoriaMetrics)."""
    g = p.add_argument_group("store access (--prometheus)")
    g.add_argument("--prometheus.bearer-token-file", dest="bearer_token_file", metavar="FILE",
                   help="send `Authorization: Bearer <file contents>`; re-read for every request (rotated tokens)")
    g.add_argument("--prometheus.basic-auth-user", dest="basic_auth_user", metavar="USER",
                   help="basic auth user (password from --prometheus.basic-auth-password-file)")
    g.add_argument("--prometheus.basic-auth-password-file", dest="basic_auth_password_file", metavar="FILE",
                   help="file holding the basic auth password (trailing newline ignored)")
    g.add_argument("--prometheus.ca-file", dest="ca_file", metavar="FILE",
                   help="PEM CA bundle to verify the store's certificate (default: the system's)")
    g.add_argument("--prometheus.cert-file", dest="cert_file", metavar="FILE",
                   help="PEM client certificate for stores that require one (with --prometheus.key-file)")
    g.add_argument("--prometheus.key-file", dest="key_file", metavar="FILE", help="PEM key of the client certificate")
    g.add_argument("--prometheus.insecure-skip-verify", dest="insecure_skip_verify", action="store_true",
                   help="do not verify the store's certificate (tests only)")
    g.add_argument("--prometheus.tenant", dest="tenant", metavar="ID",
                   help="send `X-Scope-OrgID: ID` (Mimir, Cortex, Thanos receive tenancy); for a VictoriaMetrics "
                        "cluster put the tenant in the URL instead: http://vmselect:8481/select/ACCOUNT/prometheus")
    g.add_argument("--prometheus.header", dest="headers", action="append", type=header, default=[],
                   metavar="'NAME: VALUE'", help="extra request header (repeatable)")


def store_auth(args: argparse.Namespace) -> StoreAuth:
    """The flags as a :class:`StoreAuth`; the password file is read now (a missing file stops the run)."""
    basic = None
    if args.basic_auth_user is not None:
        password = ""
        if args.basic_auth_password_file:
            password = Path(args.basic_auth_password_file).read_text().rstrip("\r\n")
        basic = (args.basic_auth_user, password)
    elif args.basic_auth_password_file:
        raise ValueError("--prometheus.basic-auth-password-file needs --prometheus.basic-auth-user")
    if bool(args.cert_file) != bool(args.key_file):
        raise ValueError("--prometheus.cert-file and --prometheus.key-file go together")
    return StoreAuth(bearer_token_file=args.bearer_token_file, basic_auth=basic, ca_file=args.ca_file,
                     cert_file=args.cert_file, key_file=args.key_file,
                     insecure_skip_verify=args.insecure_skip_verify, tenant=args.tenant, headers=dict(args.headers))


def store_settings(args: argparse.Namespace, cfg: FacilityConfig) -> StoreSettings:
    """Flags over the config's ``store`` section over the defaults."""
    flags = StoreSettings(args.duckdb_memory_limit, args.duckdb_threads, args.duckdb_temp_directory)
    return flags.merged(cfg.store).merged(StoreSettings(memory_limit=DEFAULT_MEMORY_LIMIT))


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--month", required=True, type=month, metavar="YYYY-MM",
                   help="month to report, or 'previous' for the last complete UTC month (monthly CronJob)")
    p.add_argument("--db", required=True, metavar="FILE", help="DuckDB database written by `wattfleet aggregate`")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
    p.add_argument("--config", metavar="FILE", help="facility config, for carbon budgets (optional)")


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, metavar="FILE", help="DuckDB database written by `wattfleet aggregate`")
    p.add_argument("--config", required=True, metavar="FILE", help="facility config (sites, PUE, WUE, budgets)")
    p.add_argument("--web.listen-address", dest="listen_address", type=listen_address,
                   default=f":{DEFAULT_SERVE_PORT}", metavar="HOST:PORT",
                   help=f"address to serve /metrics on: HOST:PORT, [IPv6]:PORT, or :PORT for every IPv4 and IPv6 "
                        f"address (default :{DEFAULT_SERVE_PORT})")
    p.add_argument("--web.config.file", dest="web_config_file", metavar="FILE",
                   help="TLS and basic-auth config in the Prometheus exporter-toolkit web config format "
                        "(the exporter's format)")
    p.add_argument("--refresh-seconds", type=float, default=60.0, metavar="SECONDS",
                   help="how often the database is re-read (default 60)")
    add_log_arguments(p)
    add_deprecated_alias(p, "--listen-address", "--web.listen-address")  # the spelling before, for one release


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("aggregate", help="pull telemetry and grid intensity into DuckDB; build facts and rollups",
                       description="Pull hourly energy from Prometheus (or scrape exporters directly), join PUE, "
                                   "WUE and hourly grid intensity, and build Scope 1/2/3 facts and rollups.")
    add_aggregate_arguments(p)
    p.set_defaults(func=run_aggregate)
    p = sub.add_parser("report", help="monthly report: Markdown, HTML, PNG charts, CSV and Parquet",
                       description="Write the monthly energy, carbon and water report from the DuckDB facts.")
    add_report_arguments(p)
    p.set_defaults(func=run_report)
    p = sub.add_parser("serve", help="publish grid intensity, PUE/WUE and month-to-date rollups on /metrics",
                       description="Serve aggregator metrics for Prometheus and Grafana (live carbon).")
    add_serve_arguments(p)
    p.set_defaults(func=run_serve)


def _load_config(path: str, check_zones: bool = False) -> FacilityConfig | None:
    """The validated config, or None after printing every problem; ``check_zones`` asks the grid
    package whether each site's source knows its zone (aggregate reads the grid; report/serve do not)."""
    try:
        return load_facility(path, zone_check=zone_check if check_zones else None)
    except FacilityConfigError as exc:
        print(f"wattfleet: {exc}", file=sys.stderr)
        return None


def _summary(result: IngestResult, con: duckdb.DuckDBPyConnection) -> str:
    t = totals(con)
    return (f"ingested {result.windows} hour(s) {result.start:%Y-%m-%dT%H:%MZ}..{result.end:%Y-%m-%dT%H:%MZ}: "
            f"{result.energy_rows} energy rows, {result.intensity_rows} intensity rows "
            f"({result.filled_intensity_hours} filled, {result.implausible_intensity_hours} implausible); "
            "months rebuilt: "
            f"{', '.join(m.strftime('%Y-%m') for m in result.months_rebuilt) or 'none'}; "
            f"database totals: IT {t['it_kwh']:.3f} kWh, facility {t['facility_kwh']:.3f} kWh, "
            f"Scope 2 location {t['scope2_location_g'] / 1000:.3f} kg" + _guard_summary(result))


def _guard_summary(result: IngestResult) -> str:
    """What the re-read guard held back (aggregator/ingest/recorded_guard.py), or nothing."""
    out = ""
    if result.kept_hours:
        why = "recorded series incomplete" if result.guard_mode == "pre-aggregated" else "the store answered less"
        out += (f"; {result.guard_mode}: {len(result.kept_hours)} re-read hour(s) kept as stored, {why} "
                f"(first {result.kept_hours[0].describe()})")
    if result.stopped_before is not None:
        out += (f"; pre-aggregated: stopped before {result.stopped_before.describe()}; "
                "the next run retries it")
        if result.rule_group_status:
            out += f" ({result.rule_group_status})"
    return out


def run_aggregate(args: argparse.Namespace) -> int:
    cfg = _load_config(args.config, check_zones=True)
    if cfg is None:
        return 2
    try:
        auth = store_auth(args)
        settings = store_settings(args, cfg)
    except (OSError, ValueError) as exc:
        print(f"wattfleet: {exc}", file=sys.stderr)
        return 2
    try:
        con = open_store(args.db, settings=settings)
    except StoreError as exc:
        print(f"wattfleet: {args.db}: {exc}", file=sys.stderr)
        return 2
    try:
        if args.prometheus:
            source = PrometheusSource(args.prometheus, page_hours=args.page_hours, retries=args.retries,
                                      timeout=args.query_timeout, auth=auth, shard_nodes=args.shard_nodes,
                                      pre_aggregated=args.pre_aggregated,
                                      max_response_bytes=args.max_response_bytes)
            result = ingest(con, cfg, source, args.start, args.end, lookback_hours=args.lookback_hours,
                            progress=not args.no_progress)
            print(_summary(result, con))
            return 0
        return _run_embedded(args, con, cfg)
    except IngestRangeError as exc:  # a usage error: --from/--to (or the watermark) give an inverted range
        print(f"wattfleet: {exc}", file=sys.stderr)
        return 2
    except (TelemetrySourceError, GridDataError, FacilityConfigError) as exc:
        print(f"wattfleet: {exc}", file=sys.stderr)
        return 1
    except duckdb.Error as exc:  # e.g. a full disk: the failed window was rolled back, the next run resumes
        print(f"wattfleet: {args.db}: {exc}", file=sys.stderr)
        return 1
    finally:
        con.close()


def _run_embedded(args: argparse.Namespace, con: duckdb.DuckDBPyConnection, cfg: FacilityConfig) -> int:
    scraper = EmbeddedScraper(con, split_targets(args.embedded_targets))
    source = EmbeddedSource(con)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    last_hour = None
    while True:
        scraper.scrape_once()
        now = datetime.now(timezone.utc)
        hour = now.replace(minute=0, second=0, microsecond=0)
        if args.once or hour != last_hour:
            result = ingest(con, cfg, source, args.start, args.end, lookback_hours=args.lookback_hours,
                            progress=not args.no_progress)
            log.info(_summary(result, con))
            scraper.prune(hour - timedelta(hours=args.lookback_hours + 2))
            last_hour = hour
        if args.once:
            print(_summary(result, con))
            return 0
        if stop.wait(args.scrape_interval):
            return 0


def run_report(args: argparse.Namespace) -> int:
    cfg = _load_config(args.config) if args.config else None
    if args.config and cfg is None:
        return 2
    try:
        paths = write_report(args.db, resolve_month(args.month), args.out, cfg)
    except ReportError as exc:
        print(f"wattfleet: {exc}", file=sys.stderr)
        return 1
    except StoreLockedError as exc:  # transient: another process holds the file; run again later
        print(f"wattfleet: {args.db}: {exc}", file=sys.stderr)
        return 1
    except StoreError as exc:  # a database this wattfleet cannot use (damaged, newer): like a bad argument
        print(f"wattfleet: {args.db}: {exc}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


def run_serve(args: argparse.Namespace) -> int:
    cfg = _load_config(args.config)
    if cfg is None:
        return 2
    try:
        web = load_web_config(args.web_config_file) if args.web_config_file else None
    except WebConfigError as exc:
        print(f"wattfleet serve: {exc}", file=sys.stderr)
        return 2
    host, port = parse_listen_address(args.listen_address)  # checked by argparse already
    try:
        # AggregatorServer joins host and port again: an IPv6 host needs its brackets back.
        server = AggregatorServer(args.db, cfg, f"[{host}]" if ":" in host else host, port,
                                  refresh_seconds=args.refresh_seconds, web=web)
    except OSError as exc:
        print(f"wattfleet serve: cannot listen on {args.listen_address}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    server.start()
    print(f"serving aggregator metrics on {server.http.url}", file=sys.stderr)
    try:
        wait_for_stop_signal()
    finally:
        server.stop()
    return 0
