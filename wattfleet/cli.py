"""The ``wattfleet`` command: one entry point, one subcommand per job.

Each component owns its subcommands in a ``cli`` module exposing
``register(subparsers)``; this file only assembles them, so a component's
flags live next to its code (and the Helm chart's tests can read them).

Only the exporter's dependencies are installed by default (``pip install
wattfleet``); the aggregator, report and dashboards need extras (DuckDB,
matplotlib, grafanalib). So ``main`` imports only the module of the
subcommand being run, and ``wattfleet --help`` lists every subcommand from
the table below without importing any of them: the exporter on a node never
loads (or needs) the analytics stack. A subcommand whose extra is missing
says which one to install and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NamedTuple

from wattfleet import __version__
from wattfleet.core import logs
from wattfleet.core.flags import add_deprecated_alias, warn_deprecated
from wattfleet.core.logs import add_log_arguments


class Component(NamedTuple):
    module: str
    commands: tuple[tuple[str, str], ...]  # (subcommand, one-line help), as the module registers them
    extra: str | None                      # the extra its dependencies come from; None: base install


# Component CLI modules, in the order their subcommands appear in --help. The help lines are
# repeated here so that --help imports none of them (tests/test_cli.py checks they match).
COMPONENTS = (
    Component("wattfleet.exporter.cli", (("exporter", "run the per-node energy exporter"),), None),
    Component("wattfleet.sim.cli",
              (("simulate", "serve a simulated fleet of exporters (or backfill one)"),), None),
    Component("wattfleet.aggregator.cli", (
        ("aggregate", "pull telemetry and grid intensity into DuckDB; build facts and rollups"),
        ("report", "monthly report: Markdown, HTML, PNG charts, CSV and Parquet"),
        ("serve", "publish grid intensity, PUE/WUE and month-to-date rollups on /metrics")), "aggregator"),
    Component("wattfleet.aggregator.planning.cli", (
        ("plan", "rank start times and sites for a run by expected emissions"),), "aggregator"),
    Component("wattfleet.aggregator.outputs.disclose_cli", (
        ("disclose", "generate a footprint disclosure for a training run or a served model"),), "aggregator"),
    Component("wattfleet.aggregator.dataset_cli", (
        ("dataset", "write facts to a partitioned Parquet dataset; fleet rollups from one"),), "aggregator"),
    Component("wattfleet.dashboards.cli",
              (("dashboards", "generate Grafana dashboards and Prometheus rules"),), "dashboards"),
    Component("wattfleet.demo", (
        ("demo", "simulated fleet -> embedded aggregator on DuckDB -> report and dashboards"),), "all"),
)

# Optional third-party modules -> the extra that installs them (pyproject.toml).
OPTIONAL_MODULES = {"duckdb": "aggregator", "numpy": "aggregator", "tqdm": "aggregator",
                    "matplotlib": "report", "fpdf": "report", "grafanalib": "dashboards"}


class MissingExtra(Exception):
    """A subcommand needs an optional dependency that is not installed."""

    def __init__(self, command: str, module: str, extra: str) -> None:
        super().__init__(f"wattfleet {command}: needs {module!r}, which is not installed; "
                         f"install the {extra!r} extra: pip install 'wattfleet[{extra}]'")


def _extra_for(command: str, missing: str) -> str:
    """The extra to suggest: the module's own, or ``all`` for a command that needs every one (demo)."""
    owner = next((c for c in COMPONENTS if command in [name for name, _ in c.commands]), None)
    return "all" if owner is not None and owner.extra == "all" else OPTIONAL_MODULES[missing]


def _optional_missing(exc: ModuleNotFoundError) -> str | None:
    """The optional dependency ``exc`` is about, if it is one."""
    root = (exc.name or "").split(".")[0]
    return root if root in OPTIONAL_MODULES else None


def _import_component(component: Component) -> object | None:
    """The component's CLI module; None when the component is not built yet."""
    try:
        return importlib.import_module(component.module)
    except ModuleNotFoundError as exc:
        if exc.name == component.module:
            return None
        raise


def _register_placeholders(sub: argparse._SubParsersAction, component: Component) -> None:
    for command, help_text in component.commands:
        sub.add_parser(command, help=help_text, add_help=False)


def build_parser(command: str | None = None, *, every: bool = True) -> argparse.ArgumentParser:
    """The full parser (every component whose dependencies are installed), or a lazy one.

    ``every=False`` imports only the component that owns ``command`` (none when ``command``
    is None); the other subcommands are placeholders carrying their help line. A component
    whose optional dependency is missing is a placeholder too; running it raises MissingExtra.
    """
    parser = argparse.ArgumentParser(
        prog="wattfleet",
        description="Fleet energy telemetry exporter and carbon analytics (GPU/CPU/DRAM energy, "
                    "PUE/WUE, hourly grid intensity, GHG Scope 1/2/3).",
        epilog="The exporter needs only the base install; the other subcommands need extras: "
               "pip install 'wattfleet[all]' (or [aggregator], [report], [dashboards]).")
    parser.add_argument("--version", action="version", version=f"wattfleet {__version__}")
    add_log_arguments(parser, defaults=True)
    add_deprecated_alias(parser, "--log-level", "--log.level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for component in COMPONENTS:
        names = [c for c, _ in component.commands]
        if not every and command not in names:
            _register_placeholders(sub, component)
            continue
        try:
            # Imported here, not at the top: components beyond the exporter import optional
            # dependencies (duckdb, matplotlib, grafanalib) that an exporter-only install lacks.
            module = _import_component(component)
        except ModuleNotFoundError as exc:
            missing = _optional_missing(exc)
            if missing is None:
                raise
            if command in names:
                raise MissingExtra(command, missing, _extra_for(command, missing)) from exc
            _register_placeholders(sub, component)
            continue
        if module is None:
            continue  # component not built yet
        module.register(sub)  # type: ignore[attr-defined]
    return parser


# Top-level flags followed by a separate value word (``--log.level debug``).
VALUE_FLAGS = {"--log.level", "--log.format", "--log-level"}


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first positional word), if any."""
    known = {c for component in COMPONENTS for c, _ in component.commands}
    skip_value = False
    for word in argv:
        if skip_value:
            skip_value = False
        elif word in VALUE_FLAGS:
            skip_value = True
        elif word == "--":
            return None
        elif not word.startswith("-"):
            return word if word in known else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_in(argv)
    try:
        parser = build_parser(command, every=False)
    except MissingExtra as exc:
        print(exc, file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    warn_deprecated(args)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as exc:
        # Subcommands import some optional dependencies only when they need them (report's charts).
        missing = _optional_missing(exc)
        if missing is None:
            raise
        print(MissingExtra(args.command, missing, _extra_for(args.command, missing)), file=sys.stderr)
        return 2
