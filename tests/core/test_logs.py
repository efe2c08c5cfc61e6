"""Log lines in the exporter-toolkit's formats: logfmt quoting, JSON lines, both level spellings."""

from __future__ import annotations

import argparse
import json
import logging
import re

import pytest

from wattfleet.core import logs


def record(msg: str, level: int = logging.INFO, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            import sys
            exc_info = sys.exc_info()
    return logging.LogRecord("wattfleet.x", level, "/src/wattfleet/x.py", 42, msg, None, exc_info)


def logfmt_pairs(line: str) -> dict[str, str]:
    """A small logfmt reader (bare or double-quoted values with JSON escapes)."""
    pairs = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line):
        value = m.group(2)
        pairs[m.group(1)] = json.loads(value) if value.startswith('"') else value
    return pairs


def test_logfmt_line_has_the_toolkit_keys_in_order() -> None:
    line = logs.LogfmtFormatter().format(record("serving http://[::1]:9880/metrics"))
    assert re.fullmatch(r'ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=info caller=x\.py:42 logger=wattfleet\.x '
                        r'msg="serving http://\[::1\]:9880/metrics"', line), line


@pytest.mark.parametrize("msg", ['a "quoted" word', "key=value", "back\\slash", "two\nlines", "", "tab\there",
                                 "unicode é ✓"])
def test_logfmt_quotes_what_needs_quoting_and_reads_back(msg: str) -> None:
    line = logs.LogfmtFormatter().format(record(msg))
    assert "\n" not in line
    assert logfmt_pairs(line)["msg"] == msg


def test_logfmt_leaves_simple_values_bare() -> None:
    line = logs.LogfmtFormatter().format(record("ready"))
    assert line.endswith(" msg=ready")


def test_exceptions_are_one_err_field() -> None:
    line = logs.LogfmtFormatter().format(record("failed", logging.ERROR, exc=True))
    pairs = logfmt_pairs(line)
    assert pairs["level"] == "error" and "RuntimeError: boom" in pairs["err"] and "\n" not in line
    obj = json.loads(logs.JsonFormatter().format(record("failed", logging.ERROR, exc=True)))
    assert "RuntimeError: boom" in obj["err"]


def test_json_is_one_object_per_line() -> None:
    line = logs.JsonFormatter().format(record('multi\nline "msg"', logging.WARNING))
    assert "\n" not in line
    obj = json.loads(line)
    assert obj["level"] == "warn" and obj["msg"] == 'multi\nline "msg"' and obj["caller"] == "x.py:42"
    assert list(obj)[:3] == ["ts", "level", "caller"]


@pytest.mark.parametrize("name, level", [("debug", logging.DEBUG), ("info", logging.INFO), ("warn", logging.WARNING),
                                         ("error", logging.ERROR), ("DEBUG", logging.DEBUG),
                                         ("WARNING", logging.WARNING)])
def test_both_level_spellings(name: str, level: int) -> None:
    assert logs.level_of(name) == level


def test_setup_filters_by_level_and_replaces_itself(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    try:
        logs.setup("warn", "logfmt")
        logs.setup("warn", "json")  # replaces the first: one line per record
        logging.getLogger("wattfleet.t").info("hidden")
        logging.getLogger("wattfleet.t").warning("shown")
        err = capsys.readouterr().err.splitlines()
        assert [json.loads(line)["msg"] for line in err] == ["shown"]
    finally:
        for h in [h for h in root.handlers if h not in before[0]]:
            root.removeHandler(h)
        root.setLevel(before[1])


def test_subcommand_flags_do_not_override_the_top_level_ones() -> None:
    top = argparse.ArgumentParser()
    logs.add_log_arguments(top, defaults=True)
    sub = top.add_subparsers(dest="cmd").add_parser("run")
    logs.add_log_arguments(sub)
    args = top.parse_args(["--log.level", "debug", "run"])
    assert (args.log_level, args.log_format) == ("debug", "logfmt")
    args = top.parse_args(["run", "--log.format", "json"])
    assert (args.log_level, args.log_format) == ("info", "json")
