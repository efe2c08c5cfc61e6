"""Deprecated flag spellings: hidden aliases that still work and say what replaces them.

Flags follow the Prometheus exporter conventions (``--web.listen-address``,
``--web.config.file``, ``--collector.X``); the spellings wattfleet used before
stay for one release as hidden aliases that log a deprecation warning, so a
scripted command line keeps working while it is updated. Standard library
only: the top-level ``wattfleet`` parser uses it before any dependency loads.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

DEPRECATIONS = "deprecated_flags"  # namespace attribute listing the deprecated spellings a command line used


def note_deprecated(namespace: argparse.Namespace, old: str, new: str) -> None:
    """Remember that ``old`` was used; :func:`warn_deprecated` logs it once logging is set up."""
    notes = list(getattr(namespace, DEPRECATIONS, None) or [])
    note = f"flag {old} is deprecated and will be removed in the next release; use {new}"
    if note not in notes:
        notes.append(note)
    setattr(namespace, DEPRECATIONS, notes)


def warn_deprecated(args: argparse.Namespace) -> None:
    """One warning line per deprecated spelling the command line used."""
    for note in getattr(args, DEPRECATIONS, None) or []:
        log.warning(note)


class DeprecatedAlias(argparse.Action):
    """A hidden old spelling of a flag: stores like the new one and notes the deprecation."""

    def __init__(self, option_strings: Sequence[str], dest: str, replacement: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.replacement = replacement

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        note_deprecated(namespace, option_string or self.option_strings[0], self.replacement)


def add_deprecated_alias(p: argparse.ArgumentParser, old: str, new: str, **kwargs: Any) -> None:
    """``old`` as a hidden alias of the flag ``new`` (same destination, type and choices)."""
    target = next(a for a in p._actions if new in a.option_strings)
    kwargs.setdefault("type", target.type)
    kwargs.setdefault("choices", target.choices)
    kwargs.setdefault("metavar", target.metavar)
    p.add_argument(old, dest=target.dest, action=DeprecatedAlias, replacement=new, **kwargs)
