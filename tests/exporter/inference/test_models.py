"""ModelTable: a bounded set of models per engine; idle ones expire and free their place."""

from __future__ import annotations

from wattfleet.exporter.inference.models import ModelTable


def test_new_models_beyond_the_limit_are_refused_known_ones_kept() -> None:
    t = ModelTable(max_models=2, expiry_seconds=10)
    assert t.admit("a", 0) and t.admit("b", 0)
    assert not t.admit("c", 1)
    assert t.admit("a", 1)
    assert t.names() == {"a", "b"} and len(t) == 2 and "c" not in t


def test_models_unseen_past_the_expiry_are_forgotten() -> None:
    t = ModelTable(max_models=2, expiry_seconds=10)
    t.admit("a", 0)
    t.admit("b", 5)
    assert t.expire(10) == []
    assert t.expire(10.5) == ["a"]
    assert t.admit("c", 11) and t.names() == {"b", "c"}
