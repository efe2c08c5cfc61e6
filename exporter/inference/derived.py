"""Figures derived from phase energy and token counts, for reports and dashboards.

Per-token figures divide the energy of a phase by the tokens of that phase;
per-request figures use all of the engine's energy (prefill, decode and idle),
because idle time is part of what serving a request costs. Carbon applies PUE
once and the grid intensity of the period (gCO2e/kWh, from the aggregator).
A figure whose denominator is zero is ``None``, never 0 or infinity.
"""

from __future__ import annotations

from dataclasses import dataclass

JOULES_PER_KWH = 3.6e6


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

    def as_row(self, intensity_grams_per_kwh: float | None = None, pue: float | None = None) -> dict[str, float | None]:
        """Report columns; carbon columns only when intensity and PUE are given."""
        row: dict[str, float | None] = {
            "joules_per_prefill_token": self.joules_per_prefill_token,
            "joules_per_decode_token": self.joules_per_decode_token,
            "joules_per_request": self.joules_per_request,
            "tokens_per_joule": self.tokens_per_joule,
        }
        if intensity_grams_per_kwh is not None and pue is not None:
            row["grams_co2e_per_1k_tokens"] = self.grams_per_1k_tokens(intensity_grams_per_kwh, pue)
        return row
