"""The facts' sums are exact in any order (``exact_sum`` in sql/macros.sql), so facts run on every thread.

A float sum depends on the order of its additions, and DuckDB's threads add row groups in whatever
order they finish: before ``exact_sum`` the facts ran on one thread to stay bit-identical on
re-runs. These tests pin the two halves of the replacement: the macro gives the same bits for any
order of the same addends, and no step of sql/facts sums floats any other way.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattfleet import sql
from wattfleet.aggregator.store.connection import open_store
from wattfleet.aggregator.store.rebuild import fact_steps

addends = st.lists(st.one_of(st.floats(0.0, 1.0), st.floats(0.0, 1e6), st.floats(1e-9, 1e-3)),
                   min_size=1, max_size=200)


@pytest.fixture(scope="module")
def con():
    c = open_store(":memory:")
    yield c
    c.close()


def _exact_sum(con, values: list[float]) -> float:
    con.execute("CREATE OR REPLACE TEMP TABLE _addends (i INTEGER, x DOUBLE)")
    con.executemany("INSERT INTO _addends VALUES (?, ?)", list(enumerate(values)))
    return con.execute("SELECT exact_sum(x) FROM _addends").fetchone()[0]


@settings(max_examples=60, deadline=None)
@given(values=addends, seed=st.randoms(use_true_random=False))
def test_exact_sum_gives_the_same_bits_in_any_order(con, values, seed):
    shuffled = list(values)
    seed.shuffle(shuffled)
    a, b = _exact_sum(con, values), _exact_sum(con, shuffled)
    assert a == b  # bit-identical, not approximately equal
    # and it is the sum: each addend rounded to 1e-12 at most
    assert a == pytest.approx(math.fsum(values), rel=1e-12, abs=len(values) * 1e-12)


def test_a_float_sum_would_not_be_order_free(con):
    """Why the macro exists: the same three addends summed in two orders differ as floats."""
    assert (0.1 + 0.2) + 0.3 != 0.1 + (0.2 + 0.3)
    assert _exact_sum(con, [0.1, 0.2, 0.3]) == _exact_sum(con, [0.3, 0.2, 0.1])


def test_a_sum_beyond_the_exact_range_is_an_error_not_a_wrong_number(con):
    with pytest.raises(Exception, match="(?i)could not cast|out of range|overflow"):
        _exact_sum(con, [1e27])


def test_every_sum_in_the_facts_is_exact():
    """No step of sql/facts adds floats with a bare sum() (or a window sum): only exact_sum."""
    for step in fact_steps():
        text = re.sub(r"--[^\n]*", "", sql.load(step))
        bare = re.findall(r"(?<![a-z_])sum\s*\(", text)
        assert not bare, f"sql/{step}: bare sum() in the facts; use exact_sum() (sql/macros.sql)"
        assert "any_value(cluster)" not in text and "any_value(e.cluster)" not in text, step
