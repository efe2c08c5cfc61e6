"""Disclosures: a training run's or a served model's footprint, fit to publish and to audit.

One record (:class:`DisclosureInput`) holds the figures: energy (IT,
facility, measured vs estimated), location- and market-based Scope 2, Scope 1,
embodied and upstream Scope 3, water, PUE and intensity sources, plus where
every number came from (the query files, their parameters and row counts). It
renders as a Markdown model-card section and as JSON with two views of the
same figures: EU AI Act Article 53 / Annex XI documentation (energy,
compute, training time, measured or estimated) and CSRD evidence (ESRS
E1-5 energy, E1-6 Scope 1/2/3, E3-4 water).

Build the record from plain figures (tests, other tools) or from the DuckDB
facts with :func:`disclosure_from_store`, which selects by labels and time
range; the selection runs once into a temp table so that every total and
every row count describes the same rows. Data-quality flags say what the
figures cannot be trusted for (filled or missing intensity, unmapped nodes,
estimated energy, default PUE, missing residual mix), rather than hiding it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from wattfleet import sql
from wattfleet.aggregator.inference.derived import PromptFigures
from wattfleet.aggregator.store.connection import naive_utc
from wattfleet.core import catalog

QUERIES = "queries/disclosure"
UTC = timezone.utc
SCHEMA = "wattfleet.disclosure/v1"
KINDS = ("training_run", "served_model")
DEVICE_LABELS = ("namespace", "team", "cluster", "node", "gpu_model", "site")
INFERENCE_LABELS = ("model", "engine", "cluster", "node", "site")
ESTIMATED_SHARE_FLAG = 0.2  # flag when more than 20% of IT energy is estimated


class DisclosureError(ValueError):
    pass


@dataclass
class DisclosureInput:
    """Every figure of one disclosure. Energies kWh, emissions grams, water litres."""

    kind: str  # training_run | served_model
    name: str
    period_start: datetime
    period_end: datetime
    selector: dict[str, str] = field(default_factory=dict)
    it_kwh: float = 0.0
    it_kwh_measured: float = 0.0
    facility_kwh: float = 0.0
    scope1_g: float = 0.0
    scope2_location_g: float = 0.0
    scope2_market_g: float = 0.0
    scope3_embodied_g: float = 0.0
    scope3_upstream_g: float = 0.0
    water_onsite_l: float = 0.0
    water_offsite_l: float = 0.0
    cfe_kwh: float = 0.0
    gpu_hours: float = 0.0
    tokens: float = 0.0
    # served model: prompt tokens by source (computed, cached, transferred, unsplit) and the node-hours
    # the engines split them or not (PROMPT_SOURCES order; empty for a training run)
    prompt_tokens: dict[str, float] = field(default_factory=dict)
    prompt_split_node_hours: int = 0
    prompt_unsplit_node_hours: int = 0
    first_hour: datetime | None = None
    last_hour: datetime | None = None
    # facility kWh by PUE basis: meter_hour | meter_period | default
    pue_basis_kwh: dict[str, float] = field(default_factory=dict)
    sites: list[dict[str, Any]] = field(default_factory=list)  # site, zone, it_kwh, facility_kwh
    # zone, signal, source, hours, filled_hours, fill_rules, implausible_hours
    intensity_sources: list[dict[str, Any]] = field(default_factory=list)
    # data quality inputs
    rows: int = 0
    filled_intensity_kwh: float = 0.0
    missing_intensity_rows: int = 0
    unmapped_site_rows: int = 0
    residual_mix_missing_rows: int = 0
    unallocated_rows: int = 0  # served model: inference rows with no device facts to share from
    estimates: dict[str, Any] = field(default_factory=dict)  # e.g. FLOPs, from the estimators, if given
    provenance: list[dict[str, Any]] = field(default_factory=list)  # file, params, rows
    database: str | None = None

    @property
    def it_kwh_estimated(self) -> float:
        return max(0.0, self.it_kwh - self.it_kwh_measured)


def _r(x: float | None, digits: int = 10) -> float | None:
    """Round to significant digits: drops float noise without erasing small figures (grams in kg)."""
    return None if x is None else float(f"{float(x):.{digits}g}")


def _z(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Disclosure:
    inp: DisclosureInput
    flags: list[dict[str, Any]]
    generated_at: datetime

    # --- derived figures -------------------------------------------------------------------------
    @property
    def pue_effective(self) -> float | None:
        return self.inp.facility_kwh / self.inp.it_kwh if self.inp.it_kwh > 0 else None

    @property
    def cache_hit_ratio(self) -> float | None:
        """Prompt tokens served from the prefix cache over the split ones (PromptFigures' definition)."""
        p = self.inp.prompt_tokens
        return PromptFigures(p.get("computed", 0.0), p.get("cached", 0.0), p.get("transferred", 0.0),
                             p.get("unsplit", 0.0), self.inp.prompt_split_node_hours,
                             self.inp.prompt_unsplit_node_hours).cache_hit_ratio

    @property
    def measured_share(self) -> float | None:
        return self.inp.it_kwh_measured / self.inp.it_kwh if self.inp.it_kwh > 0 else None

    def emissions_kg(self) -> dict[str, float]:
        i = self.inp
        loc = i.scope1_g + i.scope2_location_g
        return {
            "scope1": i.scope1_g / 1000, "scope2_location_based": i.scope2_location_g / 1000,
            "scope2_market_based": i.scope2_market_g / 1000, "scope3_embodied": i.scope3_embodied_g / 1000,
            "scope3_upstream_energy": i.scope3_upstream_g / 1000,
            "operational_location_based": loc / 1000,
            "lifecycle_location_based": (loc + i.scope3_embodied_g + i.scope3_upstream_g) / 1000,
            "lifecycle_market_based": (i.scope1_g + i.scope2_market_g + i.scope3_embodied_g
                                       + i.scope3_upstream_g) / 1000,
        }

    # --- JSON ---------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        i = self.inp
        em = self.emissions_kg()
        measured = self.measured_share
        method = ("measured" if measured is not None and measured >= 0.999 else
                  "estimated" if not measured else "partly measured")
        energy = {
            "it_kwh": _r(i.it_kwh), "it_kwh_measured": _r(i.it_kwh_measured),
            "it_kwh_estimated": _r(i.it_kwh_estimated), "measured_share": _r(measured, 4),
            "facility_kwh": _r(i.facility_kwh), "pue_effective": _r(self.pue_effective, 4),
            "pue_basis_facility_kwh": {k: _r(v) for k, v in sorted(i.pue_basis_kwh.items())},
            "cfe_kwh": _r(i.cfe_kwh), "cfe_score": _r(i.cfe_kwh / i.facility_kwh, 4) if i.facility_kwh else None,
            "gpu_hours": _r(i.gpu_hours),
        }
        if i.kind == "served_model":
            energy["tokens"] = _r(i.tokens)
            energy["wh_per_token"] = _r(i.facility_kwh * 1000 / i.tokens) if i.tokens else None
            energy["prompt_tokens"] = {k: _r(v) for k, v in i.prompt_tokens.items()}
            energy["cache_hit_ratio"] = _r(self.cache_hit_ratio, 4)
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "subject": {"kind": i.kind, "name": i.name, "selector": dict(sorted(i.selector.items())),
                        "period": {"start": _z(i.period_start), "end": _z(i.period_end)},
                        "observed": {"first_hour": _z(i.first_hour), "last_hour": _z(i.last_hour)}},
            "energy": energy,
            "emissions_kg_co2e": {k: _r(v) for k, v in em.items()},
            "water_liters": {"onsite": _r(i.water_onsite_l), "offsite": _r(i.water_offsite_l)},
            "measurement_method": method,
            "sites": i.sites,
            "intensity_sources": i.intensity_sources,
            "data_quality": {"rows": i.rows, "flags": self.flags},
            "estimates": i.estimates,
            "eu_ai_act_article_53": {
                "basis": "Regulation (EU) 2024/1689 Art. 53(1)(a), Annex XI Section 1 point 2(d)-(e)",
                "model": i.name,
                "lifecycle_phase": "training" if i.kind == "training_run" else "inference",
                "energy_consumption_kwh": _r(i.facility_kwh),
                "energy_consumption_known_or_estimated": "known (measured)" if method == "measured" else (
                    "estimated" if method == "estimated" else "known in part, estimated in part"),
                "energy_measured_share": _r(measured, 4),
                "computational_resources": {"gpu_hours": _r(i.gpu_hours),
                                            "floating_point_operations": i.estimates.get("flops")},
                "training_time": {"start": _z(i.first_hour), "end": _z(i.last_hour),
                                  "hours": _r(((i.last_hour - i.first_hour).total_seconds() / 3600 + 1)
                                              if i.first_hour and i.last_hour else None)}
                if i.kind == "training_run" else None,
                "methodology": "hourly IT energy from GPU/CPU/DRAM counters (NVML, RAPL) plus estimated "
                               "unmetered node overhead, x site PUE (metered where available), x hourly grid "
                               "intensity of the site's zone",
            },
            "csrd_esrs": {
                "E1-5_energy_consumption_mwh": _r(i.facility_kwh / 1000),
                "E1-6_gross_emissions_tco2e": {
                    "scope1": _r(em["scope1"] / 1000), "scope2_location_based": _r(em["scope2_location_based"] / 1000),
                    "scope2_market_based": _r(em["scope2_market_based"] / 1000),
                    # the subject's amortized (per-use) share of embodied carbon: not the inventory's
                    # Scope 3 Category 2, which counts acquisitions in full (docs/accounting.md 9.1)
                    "scope3_embodied_amortized_per_use": _r(em["scope3_embodied"] / 1000),
                    "scope3_category3_fuel_and_energy": _r(em["scope3_upstream_energy"] / 1000),
                },
                "E3-4_water_consumption_m3": _r((i.water_onsite_l) / 1000),
                "E3-4_offsite_water_m3": _r(i.water_offsite_l / 1000),
            },
            "provenance": {"database": i.database, "queries": i.provenance, "generated_at": _z(self.generated_at)},
        }
        return out

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False)

    # --- Markdown ---------------------------------------------------------------------------------
    def to_markdown(self) -> str:
        i = self.inp
        em = self.emissions_kg()
        ms = self.measured_share
        what = "Training run" if i.kind == "training_run" else "Served model"
        sel = ", ".join(f"{k}={v}" for k, v in sorted(i.selector.items())) or "all"
        lines = [
            "## Environmental impact", "",
            f"{what} **{i.name}**, {_z(i.period_start)} to {_z(i.period_end)} (selected by {sel}; "
            f"{i.rows} fact rows).", "",
            "| Quantity | Value |", "|---|---:|",
            f"| IT energy | {i.it_kwh:,.3f} kWh |",
            f"| of which measured | {i.it_kwh_measured:,.3f} kWh ({(ms or 0):.1%}) |",
            f"| of which estimated | {i.it_kwh_estimated:,.3f} kWh |",
            f"| Facility energy (x PUE {self.pue_effective or 0:.3f}) | {i.facility_kwh:,.3f} kWh |",
            f"| GPU hours | {i.gpu_hours:,.1f} |",
        ]
        if i.kind == "served_model":
            lines.append(f"| Tokens | {i.tokens:,.0f} |")
            if i.prompt_tokens:
                p, hit = i.prompt_tokens, self.cache_hit_ratio
                lines.append(f"| Prompt tokens computed / cached / transferred / not split by engine | "
                             f"{p.get('computed', 0):,.0f} / {p.get('cached', 0):,.0f} / "
                             f"{p.get('transferred', 0):,.0f} / {p.get('unsplit', 0):,.0f} |")
                lines.append(f"| Prefix-cache hit ratio | {'n/a' if hit is None else f'{hit:.1%}'} |")
        lines += [
            f"| Scope 2, location-based | {em['scope2_location_based']:,.3f} kgCO2e |",
            f"| Scope 2, market-based | {em['scope2_market_based']:,.3f} kgCO2e |",
            f"| Scope 1 (share of on-site fuel and refrigerant) | {em['scope1']:,.3f} kgCO2e |",
            f"| Scope 3, embodied hardware share | {em['scope3_embodied']:,.3f} kgCO2e |",
            f"| Scope 3, upstream energy | {em['scope3_upstream_energy']:,.3f} kgCO2e |",
            f"| Lifecycle (location-based) | {em['lifecycle_location_based']:,.3f} kgCO2e |",
            f"| Water on-site / off-site | {i.water_onsite_l:,.1f} L / {i.water_offsite_l:,.1f} L |",
            f"| 24/7 carbon-free energy | {(i.cfe_kwh / i.facility_kwh if i.facility_kwh else 0):.1%} |", "",
        ]
        if i.pue_basis_kwh:
            basis = ", ".join(f"{k} {v / i.facility_kwh:.0%}" if i.facility_kwh else k
                              for k, v in sorted(i.pue_basis_kwh.items()))
            lines.append(f"PUE basis (share of facility energy): {basis}.")
        if i.intensity_sources:
            lines.append("Grid intensity: " + "; ".join(
                f"{s['zone']} {s['signal']} from {s['source'] or 'unknown'} ({s['hours']} h, {s['filled_hours']} "
                f"filled)" for s in i.intensity_sources) + ".")
        lines.append("")
        if self.flags:
            lines.append("Data quality:")
            lines += [f"- **{f['flag']}**: {f['detail']}" for f in self.flags]
        else:
            lines.append("Data quality: no flags.")
        lines += ["", "Location-based figures use the hourly average intensity of each site's grid zone; "
                      "market-based figures apply contractual instruments and the residual mix (GHG Protocol "
                      "Scope 2 Guidance). Both are reported; neither replaces the other.", ""]
        if i.provenance:
            lines.append("Source: " + (f"`{i.database}`, " if i.database else "") + "; ".join(
                f"{q['file']} ({q['rows']} rows)" for q in i.provenance) + ".")
            lines.append("")
        return "\n".join(lines)


def quality_flags(i: DisclosureInput) -> list[dict[str, Any]]:
    """Every reason the figures are less than measured and complete."""
    flags: list[dict[str, Any]] = []

    def add(flag: str, detail: str, affected: float) -> None:
        flags.append({"flag": flag, "detail": detail, "affected": _r(affected)})

    if i.rows == 0:
        add("no_data", "no fact rows match the selector and period; every figure is zero", 0)
    if i.it_kwh > 0 and i.it_kwh_estimated / i.it_kwh > ESTIMATED_SHARE_FLAG:
        add("estimated_energy", f"{i.it_kwh_estimated / i.it_kwh:.1%} of IT energy is estimated, not metered",
            i.it_kwh_estimated)
    if i.filled_intensity_kwh > 0:
        add("intensity_filled", f"{i.filled_intensity_kwh:,.3f} kWh of facility energy used gap-filled grid "
                                f"intensity", i.filled_intensity_kwh)
    implausible = sum(s.get("implausible_hours", 0) for s in i.intensity_sources)
    if implausible:
        add("intensity_implausible", f"{implausible} zone-hour(s) used an intensity that the source's own generation "
                                     "mix makes implausible (kept and flagged; docs/accounting.md 5.3)", implausible)
    if i.missing_intensity_rows:
        add("intensity_missing", f"{i.missing_intensity_rows} rows have no grid intensity: Scope 2 is "
                                 f"under-counted", i.missing_intensity_rows)
    if i.unmapped_site_rows:
        add("site_unmapped", f"{i.unmapped_site_rows} rows ran on nodes mapped to no site: no PUE or intensity",
            i.unmapped_site_rows)
    if i.residual_mix_missing_rows:
        add("residual_mix_missing", f"{i.residual_mix_missing_rows} rows used the location-based intensity in "
                                    f"place of a residual mix for market-based Scope 2",
            i.residual_mix_missing_rows)
    default_kwh = i.pue_basis_kwh.get("default", 0.0)
    if default_kwh > 0:
        add("pue_default", f"{default_kwh:,.3f} kWh of facility energy used a configured constant PUE, "
                           f"not a meter reading", default_kwh)
    if i.gpu_hours > 0 and i.scope3_embodied_g == 0:
        add("embodied_not_configured", "GPUs ran but no embodied carbon is configured for them", i.gpu_hours)
    unsplit = i.prompt_tokens.get("unsplit", 0.0)
    if unsplit > 0:
        add("prompt_tokens_not_split", f"{unsplit:,.0f} prompt tokens come from engines that do not split them into "
                                       f"computed and cached: they count prefix-cache hits as prefill tokens, so "
                                       f"energy per token is understated for them", unsplit)
    if i.unallocated_rows:
        add("unallocated_inference", f"{i.unallocated_rows} inference rows had no device facts to share "
                                     f"market-based, Scope 1/3 and water figures from", i.unallocated_rows)
    return flags


def build_disclosure(inp: DisclosureInput, generated_at: datetime | None = None) -> Disclosure:
    if inp.kind not in KINDS:
        raise DisclosureError(f"kind must be one of {KINDS}, got {inp.kind!r}")
    if inp.period_end <= inp.period_start:
        raise DisclosureError("period end must be after its start")
    return Disclosure(inp, quality_flags(inp), generated_at or datetime.now(UTC))


# --- from the DuckDB facts -----------------------------------------------------------------------------
def _params(labels: Mapping[str, str | None], allowed: tuple[str, ...], kind: str) -> dict[str, str | None]:
    unknown = set(labels) - set(allowed)
    if unknown:
        raise DisclosureError(f"selector label(s) {sorted(unknown)} not available for a {kind}; "
                              f"use {', '.join(allowed)}")
    return {k: labels.get(k) for k in allowed}


def disclosure_from_store(con: Any, kind: str, name: str, labels: Mapping[str, str], start: datetime,
                          end: datetime, *, database: str | None = None,
                          estimates: Mapping[str, Any] | None = None,
                          generated_at: datetime | None = None) -> Disclosure:
    """Select facts by label globs (None = any) and [start, end), and disclose them.

    A training run selects ``fact_device_hour`` rows (labels cluster, node,
    gpu_model, site), or with namespace or team its ``fact_workload_hour``
    rows (namespace and team come from workload series only); a served model selects
    ``fact_inference_hour`` rows (model, engine, cluster, node, site) and
    takes its share of the node-hour's market-based, Scope 1/3 and water
    figures in proportion to facility energy.
    """
    if kind not in KINDS:
        raise DisclosureError(f"kind must be one of {KINDS}, got {kind!r}")
    allowed = DEVICE_LABELS if kind == "training_run" else INFERENCE_LABELS
    if kind == "training_run" and labels.get("gpu_model") is not None and (
            labels.get("namespace") is not None or labels.get("team") is not None):
        raise DisclosureError("namespace and team select a run's workload energy, which is split by node "
                              "component, not by GPU model; select by gpu_model or by namespace/team, not both")
    select_file = f"{QUERIES}/select_device.sql" if kind == "training_run" else f"{QUERIES}/select_inference.sql"
    params: dict[str, Any] = _params(labels, allowed, kind)
    params.update(start=naive_utc(start), end=naive_utc(end))
    con.execute(sql.load(select_file), params)
    prov: list[dict[str, Any]] = []
    n_sel = con.execute("SELECT count(*) FROM _disclosure_rows").fetchone()[0]
    prov.append({"file": f"sql/{select_file}", "params": {k: (_z(v.replace(tzinfo=UTC)) if isinstance(v, datetime)
                                                               else v) for k, v in params.items()},
                 "rows": int(n_sel), "into": "TEMP TABLE _disclosure_rows"})

    def run(file: str) -> list[tuple[Any, ...]]:
        rows = con.execute(sql.load(f"{QUERIES}/{file}")).fetchall()
        prov.append({"file": f"sql/{QUERIES}/{file}", "params": {}, "rows": len(rows), "from": "_disclosure_rows"})
        return rows

    (rows, it, it_m, fac, s1, s2l, s2m, emb, up, w_on, w_off, cfe, gpu_h, tokens, filled_kwh, missing, unmapped,
     resid, unalloc, first, last) = run("summary.sql")[0]
    pue_basis = {b: float(k) for b, k in run("pue_basis.sql") if k}
    sites = [{"site": s, "zone": z, "it_kwh": _r(i), "facility_kwh": _r(f),
              "pue_effective": _r(f / i, 4) if i else None, "rows": int(n)}
             for s, z, i, f, n in run("sites.sql")]
    prompt: dict[str, float] = {}
    split_hours = unsplit_hours = 0
    if kind == "served_model":
        prompt_file = f"{QUERIES}/prompt_tokens.sql"
        *by_source, split_hours, unsplit_hours = con.execute(sql.load(prompt_file), params).fetchone()
        if split_hours or unsplit_hours:
            prompt = dict(zip(catalog.PROMPT_SOURCES, (float(v) for v in by_source), strict=True))
        prov.append({"file": f"sql/{prompt_file}", "params": prov[0]["params"],
                     "rows": int(split_hours + unsplit_hours), "from": "fact_inference_prompt_hour"})
    sources = [{"zone": z, "signal": sig, "source": src, "hours": int(h), "filled_hours": int(fh),
                "fill_rules": fr, "implausible_hours": int(ih)}
               for z, sig, src, h, fh, fr, ih in run("intensity_sources.sql")]
    inp = DisclosureInput(
        kind=kind, name=name, period_start=start, period_end=end,
        selector={k: v for k, v in labels.items() if v is not None},
        it_kwh=it or 0.0, it_kwh_measured=it_m or 0.0, facility_kwh=fac or 0.0, scope1_g=s1 or 0.0,
        scope2_location_g=s2l or 0.0, scope2_market_g=s2m or 0.0, scope3_embodied_g=emb or 0.0,
        scope3_upstream_g=up or 0.0, water_onsite_l=w_on or 0.0, water_offsite_l=w_off or 0.0, cfe_kwh=cfe or 0.0,
        gpu_hours=gpu_h or 0.0, tokens=tokens or 0.0,
        first_hour=first.replace(tzinfo=UTC) if first else None, last_hour=last.replace(tzinfo=UTC) if last else None,
        pue_basis_kwh=pue_basis, sites=sites, intensity_sources=sources, rows=int(rows),
        filled_intensity_kwh=filled_kwh or 0.0, missing_intensity_rows=int(missing or 0),
        unmapped_site_rows=int(unmapped or 0), residual_mix_missing_rows=int(resid or 0),
        unallocated_rows=int(unalloc or 0), prompt_tokens=prompt, prompt_split_node_hours=int(split_hours),
        prompt_unsplit_node_hours=int(unsplit_hours), estimates=dict(estimates or {}), provenance=prov,
        database=database)
    return build_disclosure(inp, generated_at)


def input_as_dict(inp: DisclosureInput) -> dict[str, Any]:
    """The plain record (for debugging and golden files)."""
    return asdict(inp)
