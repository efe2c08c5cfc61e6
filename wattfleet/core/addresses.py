"""``--web.listen-address`` as an argparse type: a bad address is a usage error, not a traceback."""

from __future__ import annotations

import argparse

from wattfleet.core.http import parse_listen_address


def listen_address(value: str) -> str:
    """argparse type: a valid ``HOST:PORT``, ``:PORT`` or ``[IPv6]:PORT``, kept as written.

    Checked while parsing so that a bad address is a usage error (exit 2), not a traceback later.
    """
    try:
        parse_listen_address(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value
