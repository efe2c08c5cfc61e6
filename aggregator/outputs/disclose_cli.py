"""``wattfleet disclose``: a footprint disclosure for a training run or a served model.

Thin argument handling only: selecting facts and writing the model-card
section and JSON is :mod:`wattfleet.aggregator.outputs.disclosure`'s.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

import duckdb

from wattfleet.aggregator.argtypes import key_value
from wattfleet.aggregator.config.dates import parse_instant
from wattfleet.aggregator.outputs.disclosure import DisclosureError, disclosure_from_store
from wattfleet.aggregator.store.database import open_store


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser(
        "disclose", help="generate a footprint disclosure for a training run or a served model",
        description="Select facts by labels and time range from the DuckDB store and write a model-card "
                    "section (Markdown) and/or JSON for EU AI Act Art. 53 documentation and CSRD evidence. "
                    "Every figure lists the SQL file, parameters and row counts it came from.")
    d.add_argument("--db", required=True, help="DuckDB database written by the aggregator")
    d.add_argument("--kind", required=True, choices=["training_run", "served_model"])
    d.add_argument("--name", required=True, help="the run's or model's name as it should appear")
    d.add_argument("--label", action="append", type=key_value, default=[], metavar="LABEL=GLOB",
                   help="selector, repeatable; training_run: namespace, team, cluster, node, gpu_model, site; "
                        "served_model: model, engine, cluster, node, site")
    d.add_argument("--from", dest="start", required=True, help="period start (date or ISO timestamp, UTC)")
    d.add_argument("--to", dest="end", required=True, help="period end, exclusive (date = start of that day)")
    d.add_argument("--format", default="markdown", choices=["markdown", "json", "both"])
    d.add_argument("--flops", type=float, default=None, help="training FLOPs to state (e.g. from 6 x N x D)")
    d.add_argument("--out", default=None, help="write here instead of stdout (both: OUT.md and OUT.json)")
    d.set_defaults(func=run_disclose)


def _instant(text: str, what: str) -> datetime:
    """A date or ISO timestamp, or a ValueError naming the flag (the command prints it and exits 2)."""
    try:
        return parse_instant(text)
    except ValueError:
        raise ValueError(f"{what}: not a date or ISO timestamp: {text!r}") from None


def run_disclose(args: argparse.Namespace) -> int:
    try:
        start, end = _instant(args.start, "--from"), _instant(args.end, "--to")
    except ValueError as exc:
        print(f"wattfleet disclose: {exc}", file=sys.stderr)
        return 2
    if not Path(args.db).exists():
        print(f"wattfleet disclose: no database at {args.db}", file=sys.stderr)
        return 2
    labels = dict(args.label)
    try:
        con = open_store(args.db, read_only=True)
        try:
            d = disclosure_from_store(con, args.kind, args.name, labels, start, end, database=str(args.db),
                                      estimates={"flops": args.flops} if args.flops else None)
        finally:
            con.close()
    except (DisclosureError, duckdb.Error) as exc:
        print(f"wattfleet disclose: {args.db}: {exc}", file=sys.stderr)
        return 2
    md, js = d.to_markdown(), d.to_json_text() + "\n"
    if args.out:
        base = Path(args.out)
        if args.format == "both":
            base.with_suffix(".md").write_text(md)
            base.with_suffix(".json").write_text(js)
        else:
            base.write_text(md if args.format == "markdown" else js)
    else:
        if args.format in ("markdown", "both"):
            print(md)
        if args.format in ("json", "both"):
            print(js)
    return 0
