"""What an engine's counters may plausibly do in one interval, and how many models it may have.

An engine's /metrics page is another process's word: a load-balanced Service,
a buggy release or a hostile operator can serve anything. Every value the
collector re-exports is checked against these bounds first; a value outside
them is rejected with a counted reason and never summed, so a re-exported
counter can only grow by what an engine on these GPUs could have done.

The defaults are physical ceilings an order of magnitude above what current
engines reach per GPU (prefill of a small model with prefix caching counts a
few hundred thousand tokens per second), so a well-behaved engine never meets
them; each is per GPU the engine runs on, since data-parallel ranks add up.
"""

from __future__ import annotations

from dataclasses import dataclass

from wattfleet.exporter.inference.parsers import BUSY, MARKED_ENERGY, PROMPT, REQUEST_SECONDS, REQUESTS, TOKENS

DEFAULT_MAX_TOKENS_PER_SECOND_PER_GPU = 1_000_000.0
DEFAULT_MAX_REQUESTS_PER_SECOND_PER_GPU = 10_000.0
DEFAULT_MAX_MODELS = 100
DEFAULT_MODEL_EXPIRY_SECONDS = 600.0
# A batch's forward time is recorded when it ends, so one interval may carry a batch begun before it.
BUSY_SLACK_SECONDS = 5.0
# Request-seconds overlap (every running request counts its own time); bounded by concurrency, not by time.
MAX_CONCURRENT_REQUESTS_PER_GPU = 4096.0
# Marked energy with no GPU counter to compare against (no NVML): no board draws more than this.
MAX_WATTS_PER_GPU = 3000.0
# Above 2**53 a float no longer counts by one: adding to such a value silently loses or invents counts.
MAX_EXACT_COUNT = float(2 ** 53)


@dataclass(frozen=True)
class EngineLimits:
    """Bounds for one engine; ``gpus`` is how many GPUs (ranks) it runs on."""

    gpus: int
    max_tokens_per_second: float
    max_requests_per_second: float
    max_models: int = DEFAULT_MAX_MODELS
    model_expiry_seconds: float = DEFAULT_MODEL_EXPIRY_SECONDS

    @classmethod
    def for_gpus(cls, gpus: int, max_tokens_per_second: float | None = None,
                 max_requests_per_second: float | None = None, max_models: int | None = None,
                 model_expiry_seconds: float | None = None) -> EngineLimits:
        """The configured bounds, each defaulting to its per-GPU ceiling times ``gpus``."""
        n = max(1, gpus)
        return cls(n,
                   max_tokens_per_second if max_tokens_per_second is not None
                   else DEFAULT_MAX_TOKENS_PER_SECOND_PER_GPU * n,
                   max_requests_per_second if max_requests_per_second is not None
                   else DEFAULT_MAX_REQUESTS_PER_SECOND_PER_GPU * n,
                   max_models if max_models is not None else DEFAULT_MAX_MODELS,
                   model_expiry_seconds if model_expiry_seconds is not None else DEFAULT_MODEL_EXPIRY_SECONDS)

    def max_increase(self, kind: str, elapsed_seconds: float) -> float:
        """The most a counter of ``kind`` may grow over ``elapsed_seconds``."""
        seconds = max(0.0, elapsed_seconds)
        if kind in (TOKENS, PROMPT):
            return self.max_tokens_per_second * seconds
        if kind == REQUESTS:
            return self.max_requests_per_second * seconds
        if kind == BUSY:
            return self.gpus * (seconds + BUSY_SLACK_SECONDS)
        if kind == REQUEST_SECONDS:
            return self.gpus * MAX_CONCURRENT_REQUESTS_PER_GPU * (seconds + BUSY_SLACK_SECONDS)
        if kind == MARKED_ENERGY:
            return self.gpus * MAX_WATTS_PER_GPU * seconds
        raise KeyError(f"no bound for counter kind {kind!r}")
