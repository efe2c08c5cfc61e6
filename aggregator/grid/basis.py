"""A life-cycle intensity split into its direct part (Scope 2) and its upstream part (Scope 3 Category 3).

The GHG Protocol's Scope 2 is the emissions *from the generation* of
purchased electricity (combustion at the plant); the upstream emissions of the
generation fuels and plants are Scope 3 Category 3 (docs/accounting.md 5.5).
The EIA-930 files shipped with wattfleet (HewlettPackard/dc-rl) give a
life-cycle ``avg_CI``: exactly the generation-weighted ``LIFECYCLE_G_PER_KWH``
below. Because they also give the generation mix, each hour can be split:

    direct   = avg_CI x D / L        D = sum(share_f x DIRECT_G_PER_KWH[f])
    upstream = avg_CI - direct       L = sum(share_f x LIFECYCLE_G_PER_KWH[f])

With ``avg_CI`` = L (every shipped hour), ``direct`` is D itself; scaling by
``avg_CI / L`` keeps ``direct + upstream`` equal to the file's intensity, and
both non-negative, on an hour whose intensity and mix disagree (such an hour
is also flagged by :mod:`.implausible`). Negative net generation counts as 0,
as in the carbon-free share. An hour without generation cannot be split.

Direct factors: IPCC AR5 WG III Annex III, Table A.III.2, direct-emission
medians (coal 760, gas 370; wind, solar, hydro, nuclear 0), the same values
Electricity Maps pairs with these life-cycle medians in its default factors,
whose oil (406, a blend of EIA and UK BEIS figures) and biomass (0: biogenic
CO2 is reported outside the scopes) are used for ``OIL`` and ``OTH``; the
files' publisher counts ``OTH`` at biomass's life-cycle 230.
"""

from __future__ import annotations

from collections.abc import Sequence

# gCO2e per kWh generated, per EIA-930 fuel column.
LIFECYCLE_G_PER_KWH: dict[str, float] = {
    "WND": 11.0, "SUN": 41.0, "WAT": 24.0, "OIL": 650.0, "NG": 490.0, "COL": 820.0, "NUC": 12.0, "OTH": 230.0,
}
DIRECT_G_PER_KWH: dict[str, float] = {
    "WND": 0.0, "SUN": 0.0, "WAT": 0.0, "OIL": 406.0, "NG": 370.0, "COL": 760.0, "NUC": 0.0, "OTH": 0.0,
}


def mix_intensity(columns: Sequence[str], fuels: Sequence[float | None], factors: dict[str, float]) -> float | None:
    """Generation-weighted factor of the hour's mix (gCO2e/kWh); None without generation."""
    total = weighted = 0.0
    for col, v in zip(columns, fuels, strict=True):
        mwh = max(0.0, v or 0.0)
        total += mwh
        weighted += mwh * factors[col]
    return weighted / total if total > 0.0 else None


def split_lifecycle(columns: Sequence[str], fuels: Sequence[float | None], lifecycle_g_per_kwh: float
                    ) -> tuple[float, float] | None:
    """(direct, upstream) gCO2e/kWh of a life-cycle intensity, from the hour's mix; None when the mix
    cannot say (no generation)."""
    life = mix_intensity(columns, fuels, LIFECYCLE_G_PER_KWH)
    direct = mix_intensity(columns, fuels, DIRECT_G_PER_KWH)
    if life is None or direct is None or life <= 0.0:
        return None
    d = lifecycle_g_per_kwh * direct / life
    return d, lifecycle_g_per_kwh - d
