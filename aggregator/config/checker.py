"""Validation that collects every problem with its file, line and field, instead of failing at the first.

A wrong PUE or a double-claimed REC silently corrupts every figure
downstream, so the loader reports all of a config's problems at once, each
as ``file:line: sites[0].pue: message``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from datetime import date, datetime
from typing import Any

from wattfleet.aggregator.config.dates import parse_instant

Path_ = tuple[Any, ...]  # a position in the YAML document: ("sites", 0, "pue")


class FacilityConfigError(ValueError):
    """Every problem found in a facility config, one per line of the message."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid facility config:\n  " + "\n  ".join(problems))


DEFAULT_MAX_PUE = 3.0
"""Above any data centre measured in practice (air-cooled enterprise rooms reach about 2.5): a typo, not a site."""


class Checker:
    """Typed field readers that record an error (and return a default) instead of raising."""

    def __init__(self, source: str, lines: dict[Path_, int]) -> None:
        self.source, self.lines = source, lines
        self.problems: list[str] = []
        # Names declared in the file, valid or not: a broken site must not cascade into
        # "unknown site" errors everywhere it is referenced.
        self.declared_sites: set[str] = set()
        self.declared_zones: set[str] = set()
        # Physical bounds the file's `defaults` may tighten or widen; values past them are errors.
        self.max_pue = DEFAULT_MAX_PUE

    def for_file(self, source: str, line: int) -> Checker:
        """A checker for one row of another file (a meter CSV) that reports into this one's problems."""
        sub = Checker(source, {(): line})
        sub.problems = self.problems
        sub.max_pue = self.max_pue
        return sub

    def where(self, path: Path_) -> str:
        p = path
        while p and p not in self.lines:
            p = p[:-1]
        line = self.lines.get(p)
        dotted = ".".join(f"[{x}]" if isinstance(x, int) else str(x) for x in path).replace(".[", "[")
        return f"{self.source}:{line}: {dotted or '(top)'}" if line else f"{self.source}: {dotted or '(top)'}"

    def error(self, path: Path_, message: str) -> None:
        self.problems.append(f"{self.where(path)}: {message}")

    def mapping(self, value: Any, path: Path_, allowed: AbstractSet[str], required: AbstractSet[str] = frozenset()
                ) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {type(value).__name__}")
            return None
        for key in value:
            if key not in allowed:
                self.error(path + (key,), f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required - set(value)):
            self.error(path, f"missing required field {key!r}")
        return value

    def entries(self, raw: Any, section: str, allowed: AbstractSet[str], required: AbstractSet[str] = frozenset()
                ) -> Iterator[tuple[Path_, dict[str, Any]]]:
        """(path, mapping) for each well-formed entry of a list section such as ``budgets``."""
        if not isinstance(raw, list):
            self.error((section,), "must be a list")
            return
        for i, item in enumerate(raw):
            d = self.mapping(item, (section, i), allowed, required)
            if d is not None:
                yield (section, i), d

    def number(self, d: dict[str, Any], key: str, path: Path_, minimum: float | None = 0.0,
               default: float | None = None, strict_min: bool = False, what: str = "",
               maximum: float | None = None) -> float | None:
        if key not in d or d[key] is None:
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.error(path + (key,), f"must be a number, got {v!r}")
            return default
        v = float(v)
        if v != v or v in (float("inf"), float("-inf")):
            self.error(path + (key,), "must be finite")
            return default
        if minimum is not None and (v < minimum or (strict_min and v == minimum)):
            rel = ">" if strict_min else ">="
            self.error(path + (key,), f"must be {rel} {minimum:g}{what}, got {v:g}")
            return default
        if maximum is not None and v > maximum:
            self.error(path + (key,), f"{v:g} is above the plausible maximum {maximum:g}{what}")
            return default
        return v

    def text(self, d: dict[str, Any], key: str, path: Path_, default: str | None = None) -> str | None:
        if key not in d or d[key] is None:
            return default
        v = d[key]
        if not isinstance(v, (str, int)) or isinstance(v, bool):
            self.error(path + (key,), f"must be text, got {v!r}")
            return default
        return str(v)

    def text_list(self, d: dict[str, Any], key: str, path: Path_) -> list[str]:
        v = d.get(key, [])
        if isinstance(v, str):
            return [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.error(path + (key,), "must be a list of text")
            return []
        return v

    def month(self, d: dict[str, Any], key: str, path: Path_) -> date | None:
        v = self.text(d, key, path)
        if v is None:
            return None
        m = re.fullmatch(r"(\d{4})-(\d{2})", v)
        if not m or not 1 <= int(m.group(2)) <= 12:
            self.error(path + (key,), f"must be a month YYYY-MM, got {v!r}")
            return None
        return date(int(m.group(1)), int(m.group(2)), 1)

    def day(self, d: dict[str, Any], key: str, path: Path_) -> date | None:
        v = self.text(d, key, path)
        if v is None:
            return None
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
                return date.fromisoformat(v)
        except ValueError:
            pass
        self.error(path + (key,), f"must be a date YYYY-MM-DD, got {v!r}")
        return None

    def instant(self, d: dict[str, Any], key: str, path: Path_) -> datetime | None:
        v = self.text(d, key, path)
        if v is None:
            return None
        try:
            return parse_instant(v)
        except ValueError:
            self.error(path + (key,), f"must be a date YYYY-MM-DD or ISO timestamp, got {v!r}")
            return None
