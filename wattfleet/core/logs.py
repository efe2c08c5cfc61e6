"""Log lines as exporters write them: ``--log.level`` and ``--log.format logfmt|json``.

Operators run wattfleet next to node_exporter and Prometheus and feed every log
into the same pipeline (Loki, Elasticsearch), so wattfleet writes what the
Prometheus exporter-toolkit writes: logfmt (``ts=... level=info caller=...
msg="..."``) or one JSON object per line, on stderr. Every long-running
command takes the same two flags; this module is their one definition.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any, TextIO

# The exporter-toolkit's level names, plus the upper-case ones wattfleet accepted before
# (`--log-level INFO`), so existing command lines and Helm values keep working.
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR,
          "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
FORMATS = ("logfmt", "json")
DEFAULT_LEVEL, DEFAULT_FORMAT = "info", "logfmt"

# Python's level names -> the toolkit's (go-kit) spelling.
_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error",
                logging.CRITICAL: "error"}


def add_log_arguments(p: argparse.ArgumentParser, *, defaults: bool = False) -> None:
    """``--log.level`` and ``--log.format`` on ``p``.

    Subcommands pass ``defaults=False``: a flag they are not given leaves the value the
    top-level parser set (``wattfleet --log.level debug exporter`` keeps working), because
    argparse copies every attribute of a subcommand's namespace over the parent's.
    """
    p.add_argument("--log.level", dest="log_level", choices=tuple(LEVELS), metavar="LEVEL",
                   default=DEFAULT_LEVEL if defaults else argparse.SUPPRESS,
                   help=f"only log messages at or above LEVEL: debug, info, warn or error (default {DEFAULT_LEVEL})")
    p.add_argument("--log.format", dest="log_format", choices=FORMATS,
                   default=DEFAULT_FORMAT if defaults else argparse.SUPPRESS,
                   help=f"log line format: logfmt or json, one line per message on stderr (default {DEFAULT_FORMAT})")


def level_of(name: str) -> int:
    """The logging level a ``--log.level`` value names (either spelling)."""
    return LEVELS[name]


def _logfmt_value(value: str) -> str:
    """Quote a value the way go-logfmt does: bare when safe, else a quoted, escaped string."""
    if value and not any(c in value for c in ' ="\\') and value.isprintable():
        return value
    return json.dumps(value, ensure_ascii=False)


def _fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, str]:
    ts = datetime.fromtimestamp(record.created, timezone.utc)
    fields = {"ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
              "level": _LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
              "caller": f"{record.filename}:{record.lineno}",
              "logger": record.name,
              "msg": record.getMessage()}
    if record.exc_info:
        fields["err"] = formatter.formatException(record.exc_info)
    return fields


class LogfmtFormatter(logging.Formatter):
    """``ts=2026-01-01T00:00:00.000Z level=info caller=cli.py:12 logger=wattfleet msg="..."``."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record, self).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, the same keys as logfmt."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record, self), ensure_ascii=False)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (a test may have replaced it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def formatter_for(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else LogfmtFormatter()


def setup(level: str = DEFAULT_LEVEL, fmt: str = DEFAULT_FORMAT) -> None:
    """Send every log record at or above ``level`` to stderr in ``fmt``; calling it again replaces the setting."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(formatter_for(fmt))
    root.addHandler(handler)
    root.setLevel(level_of(level))
