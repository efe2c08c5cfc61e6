"""``wattfleet dashboards build``: write dashboards, Grafana provisioning and Prometheus rules."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from wattfleet.dashboards.build import dashboards, render, write, write_chart
from wattfleet.dashboards.rules import RuleConfig, alerting_rules, recording_rule_names, recording_rules
from wattfleet.dashboards.validate import check_dashboard, dashboard_exprs, rule_exprs, unknown_metrics

# Prometheus' duration syntax (units largest first, each at most once), e.g. 1h30m, 90s, 2d.
DURATION = re.compile(r"(?=.)((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?")
DURATION_FLAGS = (("--rate-window", "rate_window"), ("--idle-for", "idle_for"),
                  ("--carbon-burn-rate-window", "carbon_burn_rate_window"))
DEFAULT_CHART = Path(__file__).resolve().parent.parent / "helm" / "wattfleet"


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    d = RuleConfig()
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write dashboards/, provisioning/ and rules/ under DIR")
    p.add_argument("--helm-chart", type=Path, metavar="CHART_DIR", nargs="?", const=DEFAULT_CHART,
                   help="also copy dashboards and rules into CHART_DIR/files/ (default: the repository's "
                        "helm/wattfleet when given without a value)")
    p.add_argument("--prometheus-url", default="http://prometheus:9090",
                   help="URL of the provisioned Prometheus datasource (default http://prometheus:9090)")
    p.add_argument("--dashboards-path", default="/var/lib/grafana/dashboards/wattfleet", metavar="DIR",
                   help="where Grafana reads the dashboard JSON (provider path)")
    p.add_argument("--rate-window", default=d.rate_window, metavar="DURATION",
                   help=f"rate() window of the recording rules, at least 4 scrape intervals (default {d.rate_window})")
    p.add_argument("--job-regex", default=d.job_regex,
                   help=f"regex on the job label of scraped wattfleet targets (default {d.job_regex!r})")
    p.add_argument("--idle-power-watts", type=float, default=d.idle_power_watts, metavar="WATTS",
                   help=f"idle-burn alert: GPU power above this... (default {d.idle_power_watts:g})")
    p.add_argument("--idle-utilization", type=float, default=d.idle_utilization_ratio, metavar="RATIO",
                   help=f"...at utilization below this ratio (default {d.idle_utilization_ratio:g})")
    p.add_argument("--idle-for", default=d.idle_for, metavar="DURATION",
                   help=f"...for this long (default {d.idle_for})")
    p.add_argument("--intensity-stale-seconds", type=int, default=d.intensity_stale_seconds, metavar="SECONDS",
                   help=f"alert when grid intensity is older than this (default {d.intensity_stale_seconds})")
    p.add_argument("--carbon-burn-rate-target", type=float, default=d.burn_rate_target, metavar="RATIO",
                   help="alert when a carbon budget is used this many times faster than the month allows "
                        f"(default {d.burn_rate_target:g})")
    p.add_argument("--carbon-burn-rate-window", default=d.burn_rate_window, metavar="DURATION",
                   help=f"window the burn rate is measured over (default {d.burn_rate_window})")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboards", help="generate Grafana dashboards and Prometheus rules",
                       description="Grafana dashboards, provisioning and Prometheus rules generated from the "
                                   "metric catalog.")
    actions = p.add_subparsers(dest="dashboards_command", metavar="ACTION")
    b = actions.add_parser("build", help="write dashboards JSON, provisioning and rule files")
    add_build_arguments(b)
    b.set_defaults(func=run_build)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def rule_config(args: argparse.Namespace) -> RuleConfig:
    return RuleConfig(rate_window=args.rate_window, job_regex=args.job_regex, idle_power_watts=args.idle_power_watts,
                      idle_utilization_ratio=args.idle_utilization, idle_for=args.idle_for,
                      intensity_stale_seconds=args.intensity_stale_seconds,
                      burn_rate_target=args.carbon_burn_rate_target, burn_rate_window=args.carbon_burn_rate_window)


def run_build(args: argparse.Namespace) -> int:
    if args.out is None and args.helm_chart is None:
        print("wattfleet dashboards build: give --out DIR and/or --helm-chart", file=sys.stderr)
        return 2
    for flag, attr in DURATION_FLAGS:
        if not DURATION.fullmatch(getattr(args, attr)):
            print(f"wattfleet dashboards build: {flag} {getattr(args, attr)!r} is not a Prometheus duration "
                  "(e.g. 90s, 5m, 1h30m)", file=sys.stderr)
            return 2
    if args.idle_power_watts < 0:
        print("wattfleet dashboards build: --idle-power-watts must not be negative", file=sys.stderr)
        return 2
    if not 0 < args.idle_utilization < 1:
        print("wattfleet dashboards build: --idle-utilization must be between 0 and 1", file=sys.stderr)
        return 2
    if args.carbon_burn_rate_target <= 0:
        print("wattfleet dashboards build: --carbon-burn-rate-target must be positive", file=sys.stderr)
        return 2
    cfg = rule_config(args)
    problems = [p for d in dashboards().values() for p in check_dashboard(d)]
    recorded = recording_rule_names()
    exprs = [(d["title"], e) for d in dashboards().values() for e in dashboard_exprs(d)]
    exprs += [("rules", e) for e in rule_exprs(recording_rules(cfg) + alerting_rules(cfg))]
    for where, expr in exprs:
        for name in sorted(unknown_metrics([expr], recorded).get(expr, ())):
            problems.append(f"{where}: {name} is neither in the metric catalog nor a recording rule: {expr}")
    if problems:
        print("wattfleet dashboards build: generated dashboards or rules are invalid:\n  " + "\n  ".join(problems),
              file=sys.stderr)
        return 1
    files = render(cfg, args.prometheus_url, args.dashboards_path)
    written = []
    if args.out is not None:
        written += write(args.out, files)
    if args.helm_chart is not None:
        try:
            written += write_chart(args.helm_chart, files)
        except FileNotFoundError as exc:
            print(f"wattfleet dashboards build: {exc}", file=sys.stderr)
            return 2
    for path in written:
        print(path)
    return 0
