"""Which model label values of one engine are tracked: at most a fixed number, the idle ones expire.

Every model an engine names becomes a handful of series kept for as long as
the exporter runs; an engine that churns through model names (per-request
LoRA adapters, a bug, a hostile page) would otherwise grow memory and
sampling time without bound. A model is tracked from its first scrape while
there is room; beyond ``max_models`` the new ones are dropped, each drop
counted (reason ``model_limit``) rather than folded into a catch-all model,
because a folded series would mix models in every per-model figure built on
it. A model absent from the pages for ``expiry_seconds`` is forgotten and
frees its place; should it come back, its counters start from a new baseline.
"""

from __future__ import annotations


class ModelTable:
    """Tracked models of one engine, with the time each was last seen."""

    def __init__(self, max_models: int, expiry_seconds: float) -> None:
        self.max_models = max_models
        self.expiry_seconds = expiry_seconds
        self._seen: dict[str, float] = {}

    def __contains__(self, model: object) -> bool:
        return model in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def names(self) -> set[str]:
        return set(self._seen)

    def admit(self, model: str, now: float) -> bool:
        """Mark ``model`` seen at ``now``; False when it is new and the table is full."""
        if model not in self._seen and len(self._seen) >= self.max_models:
            return False
        self._seen[model] = now
        return True

    def expire(self, now: float) -> list[str]:
        """Forget the models not seen for ``expiry_seconds``; returns them."""
        old = [m for m, seen in self._seen.items() if now - seen > self.expiry_seconds]
        for m in old:
            del self._seen[m]
        return old
