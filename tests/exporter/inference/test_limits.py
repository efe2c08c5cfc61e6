"""EngineLimits: per-GPU defaults, configured overrides, one bound per counter kind."""

from __future__ import annotations

import pytest

from wattfleet.exporter.inference.limits import BUSY_SLACK_SECONDS, EngineLimits
from wattfleet.exporter.inference.parsers import BUSY, MARKED_ENERGY, REQUESTS, TOKENS


def test_defaults_scale_with_gpus_and_configured_values_win() -> None:
    two = EngineLimits.for_gpus(2)
    assert two.max_increase(TOKENS, 1.0) == 2_000_000
    assert two.max_increase(REQUESTS, 0.5) == 10_000
    assert two.max_increase(BUSY, 1.0) == 2 * (1.0 + BUSY_SLACK_SECONDS)
    assert two.max_increase(MARKED_ENERGY, 1.0) == 6000
    own = EngineLimits.for_gpus(2, max_tokens_per_second=10.0, max_models=3)
    assert own.max_increase(TOKENS, 2.0) == 20 and own.max_models == 3
    assert EngineLimits.for_gpus(1).max_increase(TOKENS, -1.0) == 0


def test_an_unknown_kind_has_no_bound() -> None:
    with pytest.raises(KeyError):
        EngineLimits.for_gpus(1).max_increase("watts", 1.0)
