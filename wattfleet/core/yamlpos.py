"""YAML loading that remembers where every value came from.

Config errors must name the file, the line and the field; PyYAML's
``safe_load`` throws positions away, so we compose the node tree and convert
it ourselves, keeping a map from each value's path to its 1-based line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[Any, ...]


MAX_CONFIG_BYTES = 4 * 1024 * 1024
"""No config file wattfleet reads is anywhere near this; a bigger one is refused before parsing."""


class YamlPositionError(ValueError):
    """The file is not YAML (or not the YAML subset we accept)."""


def first_alias_line(text: str) -> int | None:
    """1-based line of the first anchor (``&a``) or alias (``*a``) in ``text``, else None.

    Aliases let a few hundred bytes expand into gigabytes once converted to
    Python objects (the "billion laughs" pattern), and no wattfleet config
    needs them, so every loader refuses them. This walks the parser's events,
    which costs time linear in the text and never expands anything.
    """
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            return event.start_mark.line + 1 if event.start_mark is not None else 1
    return None


def read_config_text(path: str | Path) -> str:
    """The text of a config file, refusing files over :data:`MAX_CONFIG_BYTES` (bounded memory)."""
    source = str(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise YamlPositionError(f"{source}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise YamlPositionError(f"{source}: larger than {MAX_CONFIG_BYTES} bytes: not a config file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlPositionError(f"{source}: not UTF-8 text (byte {exc.start})") from None


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int], source: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlPositionError(f"{source}:{key_node.start_mark.line + 1}: mapping keys must be plain text")
            key = str(key_node.value)
            if key in out:
                raise YamlPositionError(f"{source}:{key_node.start_mark.line + 1}: field {key!r} given twice")
            out[key] = _convert(value_node, path + (key,), lines, source)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), lines, source) for i, item in enumerate(node.value)]
    # Scalars: let the safe constructor type them (int, float, bool, null, dates as text).
    try:
        value = yaml.SafeLoader(" ").construct_object(node, deep=True) if node.tag != "tag:yaml.org,2002:str" \
            else node.value
    except ValueError:  # a date-like scalar that is no date (2026-13-02): the field's parser names it
        return node.value
    if hasattr(value, "isoformat"):  # dates: keep the text, our parsers decide
        return node.value
    return value


def load_with_lines(path: str | Path) -> tuple[Any, dict[Path_, int]]:
    """Parse ``path``; returns (plain Python data, {path tuple: line})."""
    source = str(path)
    text = read_config_text(path)
    try:
        alias_line = first_alias_line(text)
        if alias_line is not None:
            raise YamlPositionError(f"{source}:{alias_line}: YAML anchors and aliases are not accepted in config files")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise YamlPositionError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    lines: dict[Path_, int] = {}
    if node is None:
        return {}, lines
    return _convert(node, (), lines, source), lines
