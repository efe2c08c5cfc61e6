"""The ``wattfleet`` command: one entry point, one subcommand per job.

Each component owns its subcommands in a ``cli`` module exposing
``register(subparsers)``; this file only assembles them, so a component's
flags live next to its code (and the Helm chart's tests can read them).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from wattfleet import __version__

# Component CLI modules, in the order their subcommands appear in --help.
COMPONENT_CLIS = (
    "wattfleet.exporter.cli",
    "wattfleet.sim.simulator",
    "wattfleet.aggregator.cli",
    "wattfleet.aggregator.planning.cli",
    "wattfleet.aggregator.outputs.disclose_cli",
    "wattfleet.dashboards.cli",
    "wattfleet.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wattfleet",
        description="Fleet energy telemetry exporter and carbon analytics (GPU/CPU/DRAM energy, "
                    "PUE/WUE, hourly grid intensity, GHG Scope 1/2/3).")
    parser.add_argument("--version", action="version", version=f"wattfleet {__version__}")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="logging verbosity (default: INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMPONENT_CLIS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # component not built yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)
