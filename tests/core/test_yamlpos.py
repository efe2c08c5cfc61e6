"""Config YAML with positions: aliases and oversized files are refused before they cost memory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from wattfleet.core.yamlpos import MAX_CONFIG_BYTES, YamlPositionError, load_with_lines


def test_values_keep_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\nb:\n  - x\n  - {c: 2}\n")
    data, lines = load_with_lines(path)
    assert data == {"a": 1, "b": ["x", {"c": 2}]}
    assert lines[("b", 1, "c")] == 4


def test_a_381_byte_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "facility.yaml"
    path.write_text("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)))
    started = time.monotonic()
    with pytest.raises(YamlPositionError, match=r"facility\.yaml:1: YAML anchors and aliases are not accepted"):
        load_with_lines(path)
    assert time.monotonic() - started < 1.0


def test_a_plain_anchor_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("sites:\n  - &s {name: a}\n")
    with pytest.raises(YamlPositionError, match=":2: YAML anchors"):
        load_with_lines(path)


def test_oversized_files_are_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * MAX_CONFIG_BYTES + b"\n")
    with pytest.raises(YamlPositionError, match="larger than"):
        load_with_lines(path)
