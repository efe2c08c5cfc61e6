"""``wattfleet dataset``: write a store's months to the shared Parquet dataset, or roll the fleet up from it.

Thin argument handling; the dataset layout and its guarantees are
:mod:`wattfleet.aggregator.store.dataset`'s (docs/scale.md says what runs where).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date

import duckdb

from wattfleet.aggregator.argtypes import month, resolve_month
from wattfleet.aggregator.store.database import StoreError, open_store
from wattfleet.aggregator.store.dataset import DatasetError, export_store, fleet_rollup


def _first_day(text: str) -> date:
    y, m = resolve_month(text).split("-")
    return date(int(y), int(m), 1)


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("dataset", help="write facts to a partitioned Parquet dataset; fleet rollups from one",
                       description="Scale-out across sites: each site's aggregator exports its months as a "
                                   "Hive-partitioned Parquet dataset (<root>/<table>/month=YYYY-MM/site=S/), "
                                   "which Spark, Trino, DuckDB or Polars read; `dataset rollup` rebuilds the "
                                   "fleet's rollups from every site's facts, equal to a single store's.")
    actions = d.add_subparsers(dest="action", required=True, metavar="{export,rollup}")
    e = actions.add_parser("export", help="write a store's facts (and a one-site store's rollups) to the dataset")
    e.add_argument("--db", required=True, metavar="FILE", help="DuckDB database written by `wattfleet aggregate`")
    e.add_argument("--out", required=True, metavar="DIR", help="dataset root (created; other sites' partitions kept)")
    e.add_argument("--month", action="append", type=month, metavar="YYYY-MM",
                   help="month to export, repeatable, or 'previous' (default: every month with facts)")
    e.set_defaults(func=run_export)
    r = actions.add_parser("rollup", help="fleet rollups of one month from every site's facts in the dataset")
    r.add_argument("--dataset", required=True, metavar="DIR", help="dataset root written by `dataset export`")
    r.add_argument("--month", required=True, type=month, metavar="YYYY-MM", help="month to roll up, or 'previous'")
    r.add_argument("--db", required=True, metavar="FILE",
                   help="DuckDB database to hold the fleet's facts and rollups (created if needed)")
    r.set_defaults(func=run_rollup)


def _run(db: str, work: str, action: Callable[[duckdb.DuckDBPyConnection], str]) -> int:
    try:
        con = open_store(db)
    except StoreError as exc:
        print(f"wattfleet: {db}: {exc}", file=sys.stderr)
        return 2
    try:
        print(action(con))
        return 0
    except DatasetError as exc:
        print(f"wattfleet: {exc}", file=sys.stderr)
        return 1
    except duckdb.Error as exc:
        print(f"wattfleet: {work}: {exc}", file=sys.stderr)
        return 1
    finally:
        con.close()


def run_export(args: argparse.Namespace) -> int:
    months = [_first_day(m) for m in args.month] if args.month else None
    return _run(args.db, args.out, lambda con: f"wrote {len(export_store(con, args.out, months))} file(s) "
                                               f"under {args.out}")


def run_rollup(args: argparse.Namespace) -> int:
    m = _first_day(args.month)
    return _run(args.db, args.dataset, lambda con: f"{m:%Y-%m}: {fleet_rollup(con, args.dataset, m)} fact rows "
                                                   f"from {args.dataset}; fleet rollups in {args.db}")
