"""Figures derived from phase energy and token counts, for reports and dashboards.

Per-token figures divide the energy of a phase by the tokens of that phase;
per-request figures use all of the engine's energy (prefill, decode and idle),
because idle time is part of what serving a request costs. Carbon applies PUE
once and the grid intensity of the period (gCO2e/kWh, from the aggregator).
A figure whose denominator is zero is ``None``, never 0 or infinity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from wattfleet.core.units import JOULES_PER_KWH

PHASE_IDLE = "idle"
COLUMNS: tuple[str, ...] = ("joules_per_prefill_token", "joules_per_decode_token", "joules_per_request",
                            "tokens_per_joule", "grams_co2e_per_1k_tokens")


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def grams_per_1k_tokens(joules_per_token: float | None, intensity_grams_per_kwh: float, pue: float) -> float | None:
    """gCO2e per 1000 tokens: J/token x 1000 / 3.6e6 J/kWh x PUE x gCO2e/kWh."""
    if pue < 1.0:
        raise ValueError(f"PUE must be >= 1.0, got {pue}")
    if intensity_grams_per_kwh < 0:
        raise ValueError(f"grid intensity must be >= 0 gCO2e/kWh, got {intensity_grams_per_kwh}")
    if joules_per_token is None:
        return None
    return joules_per_token * 1000.0 / JOULES_PER_KWH * pue * intensity_grams_per_kwh


@dataclass(frozen=True)
class PhaseFigures:
    """One engine and model over one period: the inputs and every derived figure."""

    prefill_joules: float
    decode_joules: float
    idle_joules: float
    prefill_tokens: float
    decode_tokens: float
    requests: float

    @classmethod
    def from_phase_rows(cls, rows: Iterable[Mapping[str, Any]], requests: float = 0.0) -> PhaseFigures:
        """Sum per-phase rows of one engine and model (e.g. ``rollup_inference`` for one period).

        Each row has ``phase`` (prefill, decode or idle), ``tokens`` and its
        energy as ``energy_joules`` or ``it_kwh``; requests come from the
        requests counter, which has no phase.
        """
        joules = {"prefill": 0.0, "decode": 0.0, PHASE_IDLE: 0.0}
        tokens = {"prefill": 0.0, "decode": 0.0, PHASE_IDLE: 0.0}
        for row in rows:
            phase = row["phase"]
            if phase not in joules:
                raise ValueError(f"unknown phase {phase!r} (prefill, decode or {PHASE_IDLE})")
            energy = row.get("energy_joules")
            if energy is None:
                energy = (row.get("it_kwh") or 0.0) * JOULES_PER_KWH
            joules[phase] += float(energy)
            tokens[phase] += float(row.get("tokens") or 0.0)
        return cls(joules["prefill"], joules["decode"], joules[PHASE_IDLE], tokens["prefill"], tokens["decode"],
                   requests)

    @property
    def total_joules(self) -> float:
        return self.prefill_joules + self.decode_joules + self.idle_joules

    @property
    def joules_per_prefill_token(self) -> float | None:
        return ratio(self.prefill_joules, self.prefill_tokens)

    @property
    def joules_per_decode_token(self) -> float | None:
        return ratio(self.decode_joules, self.decode_tokens)

    @property
    def joules_per_request(self) -> float | None:
        return ratio(self.total_joules, self.requests)

    @property
    def tokens_per_joule(self) -> float | None:
        """All tokens (prompt and generated) per joule of all the engine's energy."""
        return ratio(self.prefill_tokens + self.decode_tokens, self.total_joules)

    def grams_per_1k_tokens(self, intensity_grams_per_kwh: float, pue: float) -> float | None:
        """gCO2e per 1000 tokens of either phase, all energy included."""
        per_token = ratio(self.total_joules, self.prefill_tokens + self.decode_tokens)
        return grams_per_1k_tokens(per_token, intensity_grams_per_kwh, pue)

    def grams_per_1k_decode_tokens(self, intensity_grams_per_kwh: float, pue: float) -> float | None:
        return grams_per_1k_tokens(self.joules_per_decode_token, intensity_grams_per_kwh, pue)

    def as_row(self, intensity_grams_per_kwh: float | None = None, pue: float | None = None,
               grams: float | None = None) -> dict[str, float | None]:
        """Report columns (:data:`COLUMNS`).

        Carbon: from ``grams`` (gCO2e already computed hour by hour with each
        hour's PUE and intensity, e.g. the sum of ``scope2_location_g``: the
        right figure for a period) when given, else from one intensity and PUE;
        left out when neither is given.
        """
        row: dict[str, float | None] = {
            "joules_per_prefill_token": self.joules_per_prefill_token,
            "joules_per_decode_token": self.joules_per_decode_token,
            "joules_per_request": self.joules_per_request,
            "tokens_per_joule": self.tokens_per_joule,
        }
        if grams is not None:
            row["grams_co2e_per_1k_tokens"] = ratio(grams * 1000.0, self.prefill_tokens + self.decode_tokens)
        elif intensity_grams_per_kwh is not None and pue is not None:
            row["grams_co2e_per_1k_tokens"] = self.grams_per_1k_tokens(intensity_grams_per_kwh, pue)
        return row


PROMPT_NOT_SPLIT = "not split by engine"
PROMPT_SPLIT = "by engine"


@dataclass(frozen=True)
class PromptFigures:
    """Prompt tokens of one engine and model over one period, by source (issue 14).

    ``computed`` tokens ran through a forward pass; ``cached`` came from the prefix cache; ``transferred``
    arrived as KV from another instance; ``unsplit`` are an engine's prompt tokens where it does not say
    which (nothing guessed). Hit ratios count split tokens only: unsplit ones are neither hits nor misses.
    ``split_prefill_joules`` / ``split_prefill_tokens`` are the prefill energy and the prefill phase's
    tokens (the computed ones) of the hours the engine split its prompt tokens.
    """

    computed_tokens: float = 0.0
    cached_tokens: float = 0.0
    transferred_tokens: float = 0.0
    unsplit_tokens: float = 0.0
    split_node_hours: int = 0
    unsplit_node_hours: int = 0
    split_prefill_joules: float = 0.0
    split_prefill_tokens: float = 0.0

    @property
    def split_tokens(self) -> float:
        return self.computed_tokens + self.cached_tokens + self.transferred_tokens

    @property
    def cache_hit_ratio(self) -> float | None:
        """Share of the split prompt tokens served from the engine's prefix cache."""
        return ratio(self.cached_tokens, self.split_tokens) if self.split_node_hours else None

    @property
    def transferred_ratio(self) -> float | None:
        """Share of the split prompt tokens whose KV came from elsewhere (disaggregated prefill)."""
        return ratio(self.transferred_tokens, self.split_tokens) if self.split_node_hours else None

    @property
    def joules_per_computed_prefill_token(self) -> float | None:
        """Prefill energy per prompt token actually computed, over the hours the engine split them."""
        return ratio(self.split_prefill_joules, self.split_prefill_tokens) if self.split_prefill_joules > 0 else None

    @property
    def split_label(self) -> str:
        """``by engine``, ``not split by engine`` (no hour split, or no prompt series at all), or partial."""
        if not self.split_node_hours:
            return PROMPT_NOT_SPLIT
        if not self.unsplit_node_hours:
            return PROMPT_SPLIT
        total = self.split_node_hours + self.unsplit_node_hours
        return f"{PROMPT_SPLIT} in {self.split_node_hours} of {total} node-hours"
