"""Planning estimators: what a run *will* cost, before there are measurements.

Every function is plain arithmetic with units in the argument names, so a
planner can see exactly which assumption drives the result. Each estimate
also takes what the fleet has *measured* when it exists (a run's real IT
energy, a site's real PUE): the measured value replaces the modelled one and
the result says which inputs were measured, so a disclosure can tell the two
apart.

Units: energy in kWh, power in watts, intensity in gCO2e/kWh, emissions in kg
CO2e unless the name says grams, compute in FLOPs and FLOP/s, time in hours.

The chain follows docs/accounting.md, each step once: IT energy -> x PUE (facility
energy) -> x intensity (operational carbon); embodied carbon is amortized by
hours of service and kept separate until the last sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from wattfleet.aggregator.outputs.disclosure import disclosure_from_store
from wattfleet.core.units import JOULES_PER_KWH

HOURS_PER_YEAR = 8760.0
SECONDS_PER_HOUR = 3600.0
FLOPS_PER_PARAM_TOKEN_TRAINING = 6.0  # forward (2) + backward (4) per parameter and token
FLOPS_PER_PARAM_TOKEN_INFERENCE = 2.0  # forward only


class EstimateError(ValueError):
    """An input that makes the estimate meaningless (named, with its value)."""


def _positive(name: str, value: float, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value):
        raise EstimateError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise EstimateError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def _pue(value: float) -> float:
    _positive("pue", value)
    if value < 1.0:
        raise EstimateError(f"pue must be >= 1.0 (facility energy includes IT energy), got {value!r}")
    return float(value)


def _ratio(name: str, value: float) -> float:
    _positive(name, value)
    if value > 1.0:
        raise EstimateError(f"{name} is a ratio in (0, 1], got {value!r}")
    return float(value)


# --- building blocks ------------------------------------------------------------------------------
def training_flops(active_params: float, tokens: float,
                   flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN_TRAINING) -> float:
    """Training compute in FLOPs: 6 x active parameters x tokens.

    For a mixture-of-experts model pass the parameters *active per token*
    (Mixtral 8x7B: about 13e9 of 47e9), since only those do arithmetic.
    """
    return (_positive("active_params", active_params) * _positive("tokens", tokens)
            * _positive("flops_per_param_token", flops_per_param_token))


def facility_kwh(it_kwh: float, pue: float) -> float:
    """Facility energy = IT energy x PUE (applied once, to IT energy only)."""
    return _positive("it_kwh", it_kwh, allow_zero=True) * _pue(pue)


def emissions_kg(facility_energy_kwh: float, grams_per_kwh: float) -> float:
    """Operational carbon in kg = facility kWh x gCO2e/kWh / 1000."""
    return (_positive("facility_energy_kwh", facility_energy_kwh, allow_zero=True)
            * _positive("grams_per_kwh", grams_per_kwh, allow_zero=True) / 1000.0)


def pue_ratio(total_facility_kwh: float, it_kwh: float) -> float:
    """PUE = total facility energy / IT energy (6.3 MW / 4.2 MW = 1.5)."""
    pue = _positive("total_facility_kwh", total_facility_kwh) / _positive("it_kwh", it_kwh)
    if pue < 1.0:
        raise EstimateError(f"total facility energy {total_facility_kwh} is below IT energy {it_kwh}: PUE < 1")
    return pue


def site_pue_at(site: Any, hour: datetime) -> tuple[float, str]:
    """(PUE, basis) of a config ``Site`` at ``hour``: the shortest metered period covering it, else the default.

    An hourly reading beats a monthly one, which beats the configured
    constant; the basis says which (``meter_hour``, ``meter_period``,
    ``default``). The accounting applies the same precedence in SQL
    (``sql/facts/030_site_hour_pue.sql``, over the dimension tables), and
    tests/sql/test_facts.py pins that the two agree;
    ``serve`` and the shift analysis use this one.
    """
    covering = [m for m in site.pue_meter if m.start <= hour < m.end]
    if not covering:
        return float(site.pue), "default"
    best = min(covering, key=lambda m: m.end - m.start)  # first listed among equally short periods
    basis = "meter_hour" if best.end - best.start <= timedelta(hours=1) else "meter_period"
    return pue_ratio(best.total_kwh, best.it_kwh), basis


def pue_retrofit_savings(it_kw: float, pue_before: float, pue_after: float) -> tuple[float, float]:
    """(kW saved, kWh saved per year) when PUE drops at constant IT load.

    2,000 kW IT at PUE 1.58 -> 1.10 saves 960 kW, 8,409,600 kWh/yr.
    """
    saved_kw = _positive("it_kw", it_kw) * (_pue(pue_before) - _pue(pue_after))
    return saved_kw, saved_kw * HOURS_PER_YEAR


def job_energy_kwh(hours: float, gpu_count: int, gpu_power_w: float) -> float:
    """IT energy of a job from duration, GPU count and average power per GPU (10 h x 4 x 300 W = 12 kWh)."""
    return (_positive("hours", hours, allow_zero=True) * _positive("gpu_count", gpu_count)
            * _positive("gpu_power_w", gpu_power_w, allow_zero=True) / 1000.0)


def inference_grams(tokens: float, wh_per_token: float, pue: float, grams_per_kwh: float) -> float:
    """gCO2e of serving ``tokens`` at ``wh_per_token`` IT energy (500 x 0.3 Wh x 1.1 x 400 / 1000 = 66 g)."""
    it_kwh = _positive("tokens", tokens, allow_zero=True) * _positive("wh_per_token", wh_per_token) / 1000.0
    return facility_kwh(it_kwh, pue) * _positive("grams_per_kwh", grams_per_kwh, allow_zero=True)


def water_liters(wue_liters_per_kwh: float, it_kwh: float) -> float:
    """On-site water = WUE (L per kWh of IT energy) x IT energy (1.8 L/kWh x 10,000 MWh = 18e6 L)."""
    return _positive("wue_liters_per_kwh", wue_liters_per_kwh, allow_zero=True) * _positive(
        "it_kwh", it_kwh, allow_zero=True)


# --- embodied ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbodiedShare:
    """A job's share of hardware manufacturing carbon, amortized by hours of service."""

    units: int
    kg_per_unit: float
    life_years: float
    job_hours: float
    kg_per_hour: float  # for all units together
    kg: float  # the job's share


def embodied_share(kg_per_unit: float, units: int, job_hours: float, life_years: float = 4.0,
                   ) -> EmbodiedShare:
    """Embodied carbon carried by a job: kg x units x job_hours / (life_years x 8760).

    8 H100 x 164 kg = 1,312 kg over 3 years (26,280 h) = 0.050 kg/h, so a 10 h
    job carries 0.50 kg. Service life 3-5 years (4 is the common default).
    """
    total = _positive("kg_per_unit", kg_per_unit, allow_zero=True) * _positive("units", units)
    per_hour = total / (_positive("life_years", life_years) * HOURS_PER_YEAR)
    hours = _positive("job_hours", job_hours, allow_zero=True)
    return EmbodiedShare(int(units), float(kg_per_unit), float(life_years), hours, per_hour, per_hour * hours)


# --- training run -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingEstimate:
    """A training run's compute time, energy and carbon, with where each input came from."""

    flops: float
    gpu_hours: float
    wall_hours: float
    it_kwh: float
    pue: float
    facility_kwh: float
    grams_per_kwh: float
    operational_kg: float
    embodied_kg: float
    measured: tuple[str, ...] = ()  # inputs taken from measurements (e.g. "it_kwh", "pue")

    @property
    def lifecycle_kg(self) -> float:
        """Operational + embodied, summed last so each term stays visible."""
        return self.operational_kg + self.embodied_kg

    @property
    def tonnes(self) -> float:
        return self.operational_kg / 1000.0

    @property
    def method(self) -> str:
        return "measured" if "it_kwh" in self.measured else "estimated"


def estimate_training(
    flops: float,
    peak_flops_per_s: float,
    mfu: float,
    gpu_power_w: float,
    gpu_count: int,
    pue: float,
    grams_per_kwh: float,
    *,
    embodied_kg_per_gpu: float = 0.0,
    life_years: float = 4.0,
    measured_it_kwh: float | None = None,
    measured_pue: float | None = None,
) -> TrainingEstimate:
    """Hours, kWh and kgCO2e of a training run from first principles.

    gpu_hours = FLOPs / (peak FLOP/s x MFU x 3600); wall_hours = gpu_hours /
    GPUs; IT kWh = GPU power (W) x GPUs x wall hours / 1000; facility kWh =
    IT x PUE; kg = facility kWh x g/kWh / 1000. GPU power is average draw,
    not TDP, when known (TDP overstates). ``measured_it_kwh`` (the run's real
    IT energy from the fleet's facts) and ``measured_pue`` (the site's real
    PUE over the run) replace the modelled values and are listed in
    ``measured``. Worked example (70B params, 1.4T tokens, H100 989 TFLOP/s,
    40% MFU, 700 W, 2,048 GPUs, PUE 1.1, 400 g/kWh): 412,875 GPU-h, 201.6 h,
    289,012 kWh IT, 317,914 kWh facility, 127.2 t.
    """
    _positive("flops", flops)
    effective = _positive("peak_flops_per_s", peak_flops_per_s) * _ratio("mfu", mfu)
    gpus = _positive("gpu_count", gpu_count)
    gpu_hours = flops / (effective * SECONDS_PER_HOUR)
    wall_hours = gpu_hours / gpus
    measured: list[str] = []
    if measured_it_kwh is not None:
        it = _positive("measured_it_kwh", measured_it_kwh, allow_zero=True)
        measured.append("it_kwh")
    else:
        it = _positive("gpu_power_w", gpu_power_w) * gpus * wall_hours / 1000.0
    if measured_pue is not None:
        p = _pue(measured_pue)
        measured.append("pue")
    else:
        p = _pue(pue)
    fac = it * p
    op = emissions_kg(fac, grams_per_kwh)
    emb = embodied_share(embodied_kg_per_gpu, int(gpus), wall_hours, life_years).kg if embodied_kg_per_gpu else 0.0
    return TrainingEstimate(flops, gpu_hours, wall_hours, it, p, fac, float(grams_per_kwh), op, emb,
                            tuple(measured))


def estimate_training_from_params(
    active_params: float, tokens: float, peak_flops_per_s: float, mfu: float, gpu_power_w: float,
    gpu_count: int, pue: float, grams_per_kwh: float, **kwargs: float | None,
) -> TrainingEstimate:
    """:func:`estimate_training` with FLOPs = 6 x active parameters x tokens."""
    return estimate_training(training_flops(active_params, tokens), peak_flops_per_s, mfu, gpu_power_w,
                             gpu_count, pue, grams_per_kwh, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ArchitectureComparison:
    dense: TrainingEstimate
    moe: TrainingEstimate

    @property
    def energy_saving_ratio(self) -> float:
        """1 - MoE energy / dense energy: equals 1 - active_moe / dense params when hardware is equal."""
        return 1.0 - self.moe.facility_kwh / self.dense.facility_kwh


def compare_dense_moe(dense_params: float, moe_active_params: float, tokens: float, *,
                      peak_flops_per_s: float = 989e12, mfu: float = 0.40, gpu_power_w: float = 700.0,
                      gpu_count: int = 1, pue: float = 1.1, grams_per_kwh: float = 400.0,
                      ) -> ArchitectureComparison:
    """Dense vs mixture-of-experts at equal tokens: compute scales with *active* parameters.

    70B dense vs 13B-active MoE on 2T tokens (H100 989 TFLOP/s, 40% MFU,
    700 W, PUE 1.1, 400 g/kWh): 454,162 vs 84,344 kWh, 181.7 vs 33.7 t,
    saving 81.4%.
    """
    args = (peak_flops_per_s, mfu, gpu_power_w, gpu_count, pue, grams_per_kwh)
    return ArchitectureComparison(estimate_training_from_params(dense_params, tokens, *args),
                                  estimate_training_from_params(moe_active_params, tokens, *args))


@dataclass(frozen=True)
class EfficiencyMetrics:
    flops_per_token: float
    wh_per_param: float
    tokens_per_kwh: float


def efficiency_metrics(params: float, tokens: float, facility_energy_kwh: float) -> EfficiencyMetrics:
    """FLOPs per token (6N), Wh per parameter and tokens per kWh of a training run.

    Llama 2 7B (256 GPUs x 400 W x 480 h x PUE 1.1 = 54,067 kWh, 2T tokens):
    4.2e10 FLOPs/token, 0.0077 Wh/param, about 37 million tokens/kWh.
    """
    _positive("facility_energy_kwh", facility_energy_kwh)
    return EfficiencyMetrics(FLOPS_PER_PARAM_TOKEN_TRAINING * _positive("params", params),
                             facility_energy_kwh * 1000.0 / params,
                             _positive("tokens", tokens) / facility_energy_kwh)


# --- inference ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BreakEven:
    """When cumulative serving emissions overtake the one-off training emissions."""

    training_kg: float
    kg_per_request: float
    requests: float  # requests after which serving exceeds training
    days: float | None  # at ``requests_per_day``, if given

    @property
    def serving_dominates_after(self) -> str:
        return f"{self.requests:,.0f} requests" + (f" ({self.days:,.1f} days)" if self.days is not None else "")


def inference_break_even(
    training_kg: float,
    *,
    kwh_per_request: float | None = None,
    tokens_per_request: float | None = None,
    wh_per_token: float | None = None,
    pue: float = 1.0,
    grams_per_kwh: float,
    requests_per_day: float | None = None,
) -> BreakEven:
    """Requests after which serving emissions exceed training: N = C_train / c_request.

    c_request = facility kWh per request x g/kWh, with IT energy per request
    either given (``kwh_per_request``) or tokens x Wh/token (N_break =
    C_train / (T_out x e_tok)). ``training_kg`` may be measured (from the
    run's facts) or estimated. 10 M requests/day at 0.001 kWh and 429 g/kWh
    emit 4,290 kg/day, so a 5.7 t training run is overtaken after 1.33 days.
    """
    train = _positive("training_kg", training_kg, allow_zero=True)
    if kwh_per_request is None:
        if tokens_per_request is None or wh_per_token is None:
            raise EstimateError("give kwh_per_request, or tokens_per_request and wh_per_token")
        kwh_per_request = _positive("tokens_per_request", tokens_per_request) * _positive(
            "wh_per_token", wh_per_token) / 1000.0
    per_req = facility_kwh(_positive("kwh_per_request", kwh_per_request), pue) * _positive(
        "grams_per_kwh", grams_per_kwh) / 1000.0
    n = train / per_req
    days = n / _positive("requests_per_day", requests_per_day) if requests_per_day is not None else None
    return BreakEven(train, per_req, n, days)


def kwh_per_request_from_power(seconds_per_request: float, power_w: float) -> float:
    """IT energy of one request from its latency and average power: 50 ms x 100 W = 5 J."""
    return _positive("seconds_per_request", seconds_per_request) * _positive("power_w", power_w) / JOULES_PER_KWH


# --- location ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlacementOption:
    name: str
    grams_per_kwh: float
    kg: float
    cost: float | None = None


@dataclass
class PlacementComparison:
    facility_energy_kwh: float
    options: list[PlacementOption] = field(default_factory=list)

    @property
    def spread(self) -> float:
        """Dirtiest / cleanest emissions (21.5x for 429 vs 20 g/kWh)."""
        kgs = [o.kg for o in self.options]
        return max(kgs) / min(kgs) if kgs and min(kgs) > 0 else math.inf


def compare_placements(facility_energy_kwh: float, grams_per_kwh_by_place: dict[str, float],
                       cost_per_kwh_by_place: dict[str, float] | None = None) -> PlacementComparison:
    """The same facility energy at each place's (annual or window-average) intensity, cleanest first.

    13,246.5 kWh at 429 g/kWh = 5,682.7 kg; at 20 g/kWh = 264.9 kg (21.5x).
    For hour-by-hour placement use :mod:`.planning` instead.
    """
    e = _positive("facility_energy_kwh", facility_energy_kwh, allow_zero=True)
    costs = cost_per_kwh_by_place or {}
    opts = [PlacementOption(name, float(g), emissions_kg(e, g), e * costs[name] if name in costs else None)
            for name, g in grams_per_kwh_by_place.items()]
    opts.sort(key=lambda o: (o.kg, o.name))
    return PlacementComparison(e, opts)


# --- measured inputs from the DuckDB facts ------------------------------------------------------------
@dataclass(frozen=True)
class MeasuredRun:
    """What the fleet accounted for a run or a served model (selected by labels and time range).

    Energies kWh, intensity gCO2e/kWh (location-based, facility-energy
    weighted), emissions kg, hours h. ``pue`` is the effective PUE of the
    selected rows (facility / IT energy, metered where the site reports it);
    ``it_kwh_measured`` is the metered part of ``it_kwh``. ``provenance``
    lists the SQL files, parameters and row counts (as in a disclosure).
    """

    rows: int
    it_kwh: float
    it_kwh_measured: float
    facility_kwh: float
    pue: float
    grams_per_kwh: float
    operational_kg: float
    embodied_kg: float
    gpu_hours: float
    span_hours: float  # first to last accounted hour, inclusive
    tokens: float
    pue_metered_kwh: float  # facility energy whose PUE came from a meter
    provenance: tuple[dict, ...] = ()

    @property
    def it_wh_per_token(self) -> float | None:
        """IT energy per token of a served model (Wh), for :func:`inference_break_even`."""
        return self.it_kwh * 1000.0 / self.tokens if self.tokens else None


def measured_from_store(con: object, labels: dict[str, str], start: object, end: object,
                        kind: str = "training_run") -> MeasuredRun:
    """A run's (``training_run``: labels namespace, team, cluster, node, gpu_model, site) or a served
    model's (``served_model``: model, engine, cluster, node, site) accounted figures over [start, end).

    Feed them to the estimators: ``estimate_training(..., measured_it_kwh=m.it_kwh,
    measured_pue=m.pue, grams_per_kwh=m.grams_per_kwh)`` or
    ``inference_break_even(m_train.operational_kg, tokens_per_request=..., wh_per_token=m_serve.it_wh_per_token,
    pue=m_serve.pue, grams_per_kwh=m_serve.grams_per_kwh)``. A site's real PUE is
    ``measured_from_store(con, {"site": name}, start, end).pue``. The selection is the disclosure's
    (``sql/queries/disclosure/select_*.sql``), so an estimate and a disclosure of the same run agree.
    """
    d = disclosure_from_store(con, kind, "estimator input", labels, start, end)  # type: ignore[arg-type]
    i = d.inp
    if i.rows == 0 or i.it_kwh <= 0 or i.facility_kwh <= 0:
        raise EstimateError(f"no accounted energy for {kind} {labels} in [{start}, {end}): nothing measured to use")
    span = ((i.last_hour - i.first_hour).total_seconds() / 3600.0 + 1.0) if i.first_hour and i.last_hour else 0.0
    metered = sum(v for k, v in i.pue_basis_kwh.items() if k != "default")
    return MeasuredRun(i.rows, i.it_kwh, i.it_kwh_measured, i.facility_kwh, i.facility_kwh / i.it_kwh,
                       i.scope2_location_g / i.facility_kwh, (i.scope1_g + i.scope2_location_g) / 1000.0,
                       i.scope3_embodied_g / 1000.0, i.gpu_hours, span, i.tokens, metered, tuple(i.provenance))
