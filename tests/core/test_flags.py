"""Shared command-line pieces: listen addresses checked while parsing, deprecated aliases."""

from __future__ import annotations

import argparse
import logging

import pytest

from wattfleet.core.addresses import listen_address
from wattfleet.core.flags import add_deprecated_alias, warn_deprecated


@pytest.mark.parametrize("address", [":9880", "0.0.0.0:9880", "[::1]:0", "[::]:9880", "localhost:1"])
def test_good_addresses_are_kept_as_written(address: str) -> None:
    assert listen_address(address) == address


@pytest.mark.parametrize("address", ["9880", "::1:9880", "[::1:9880", "[fe80::zz]:1", "host:99999", "host:"])
def test_bad_addresses_are_argparse_type_errors(address: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        listen_address(address)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="t")
    p.add_argument("--web.listen-address", dest="listen_address", type=listen_address, default=":1")
    add_deprecated_alias(p, "--listen-address", "--web.listen-address")
    return p


def test_alias_stores_into_the_new_flag_and_is_hidden() -> None:
    p = parser()
    args = p.parse_args(["--listen-address", "[::1]:2"])
    assert args.listen_address == "[::1]:2"
    assert args.deprecated_flags == ["flag --listen-address is deprecated and will be removed in the next release; "
                                     "use --web.listen-address"]
    assert "--listen-address" not in p.format_help().replace("--web.listen-address", "")
    assert p.parse_args([]).listen_address == ":1" and not hasattr(p.parse_args([]), "deprecated_flags")


def test_alias_checks_its_value_like_the_new_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["--listen-address", "nope"])
    assert exc.value.code == 2 and "must look like HOST:PORT" in capsys.readouterr().err


def test_warnings_are_logged_once_each(caplog: pytest.LogCaptureFixture) -> None:
    args = parser().parse_args(["--listen-address", ":3", "--listen-address", ":4"])
    with caplog.at_level(logging.WARNING):
        warn_deprecated(args)
    assert [r.getMessage() for r in caplog.records] == [args.deprecated_flags[0]]
