"""Shift analysis: what flexible work emitted, next to what it could have emitted.

For each workload marked flexible (a namespace or team glob), two
counterfactuals over the accounted period, using the same location-based
(average) intensity the accounts use:

* **time shift**: within each allowed window (``window_hours`` blocks aligned
  to the period start, e.g. 24 = every UTC day), the window's IT energy is
  moved to the cleanest allowed hours of the same site, at most the
  workload's peak observed hourly energy per hour (it cannot run faster than
  it did), cleanest hour first;
* **site shift**: the same hourly IT energy at each allowed site, with that
  site's PUE and zone intensity; the cleanest site is reported.

Everything is computed from plain rows, so the monthly report can call it on
the DuckDB facts (:func:`energy_rows_from_store`) or on anything else.
"""

from __future__ import annotations

import fnmatch
import html
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from wattfleet.aggregator.config.model import FlexibleWorkload
from wattfleet.aggregator.grid.timeutil import UTC
from wattfleet.aggregator.planning.estimators import site_pue_at
from wattfleet.aggregator.store.database import naive_utc, sql_text


@dataclass(frozen=True)
class EnergyHour:
    """One hour of a workload's energy at a site, as accounted (facts)."""

    hour_utc: datetime
    site: str
    namespace: str | None
    team: str | None
    it_kwh: float
    facility_kwh: float
    scope2_location_g: float


@dataclass
class ShiftRow:
    kind: str
    key: str
    it_kwh: float
    actual_kg: float
    time_shift_kg: float
    site_shift_kg: float | None
    best_site: str | None
    uncovered_kwh: float = 0.0  # energy that found no allowed hour with intensity (kept where it ran)
    notes: list[str] = field(default_factory=list)

    @property
    def best_kg(self) -> float:
        return min(self.time_shift_kg, self.site_shift_kg if self.site_shift_kg is not None else self.time_shift_kg)

    @property
    def saving_ratio(self) -> float | None:
        return 1 - self.best_kg / self.actual_kg if self.actual_kg > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "it_kwh": round(self.it_kwh, 6),
                "actual_kg": round(self.actual_kg, 6), "time_shift_kg": round(self.time_shift_kg, 6),
                "site_shift_kg": None if self.site_shift_kg is None else round(self.site_shift_kg, 6),
                "best_site": self.best_site, "uncovered_kwh": round(self.uncovered_kwh, 6),
                "saving_ratio": None if self.saving_ratio is None else round(self.saving_ratio, 4),
                "notes": self.notes}


# (site, hour) -> (pue, grams_per_kwh) or None when the hour has no intensity
SiteHourFactor = Callable[[str, datetime], "tuple[float, float] | None"]


def shift_analysis(
    rows: Iterable[EnergyHour],
    flexible: Sequence[FlexibleWorkload],
    factor: SiteHourFactor,
    period_start: datetime,
    period_end: datetime,
) -> list[ShiftRow]:
    """One :class:`ShiftRow` per flexible workload key (label value) that ran in the period."""
    grouped: dict[tuple[int, str], list[EnergyHour]] = defaultdict(list)
    for r in rows:
        if not (period_start <= r.hour_utc < period_end):
            continue
        for i, fw in enumerate(flexible):
            value = r.namespace if fw.kind == "namespace" else r.team
            if value is not None and fnmatch.fnmatchcase(value, fw.match):
                grouped[(i, value)].append(r)
                break  # first matching rule wins, so energy is never counted twice
    out = []
    for (i, key), rs in sorted(grouped.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        out.append(_analyse(flexible[i], key, rs, factor, period_start, period_end))
    return out


def _hours(start: datetime, end: datetime) -> list[datetime]:
    out, t = [], start
    while t < end:
        out.append(t)
        t += timedelta(hours=1)
    return out


def _analyse(fw: FlexibleWorkload, key: str, rs: list[EnergyHour], factor: SiteHourFactor,
             period_start: datetime, period_end: datetime) -> ShiftRow:
    actual_kg = sum(r.scope2_location_g for r in rs) / 1000.0
    it_total = sum(r.it_kwh for r in rs)
    row = ShiftRow(fw.kind, key, it_total, actual_kg, 0.0, None, None)
    # Time shift, per site and window block.
    by_block: dict[tuple[str, int], list[EnergyHour]] = defaultdict(list)
    for r in rs:
        block = int((r.hour_utc - period_start).total_seconds() // 3600) // fw.window_hours
        by_block[(r.site, block)].append(r)
    time_g = 0.0
    for (site, block), brs in sorted(by_block.items()):
        b_start = period_start + timedelta(hours=block * fw.window_hours)
        b_end = min(period_end, b_start + timedelta(hours=fw.window_hours))
        per_hour: dict[datetime, float] = defaultdict(float)
        for r in brs:
            per_hour[r.hour_utc] += r.it_kwh
        cap = max(per_hour.values())
        energy = sum(per_hour.values())
        slots = []
        for h in _hours(b_start, b_end):
            if fw.allowed_hours_utc is not None and h.hour not in fw.allowed_hours_utc:
                continue
            f = factor(site, h)
            if f is not None:
                slots.append((f[0] * f[1], h))
        slots.sort()
        left = energy
        for g_per_it_kwh, _h in slots:
            if left <= 1e-12:
                break
            take = min(cap, left)
            time_g += take * g_per_it_kwh
            left -= take
        if left > 1e-12:
            # Not enough clean allowed hours: the rest stays where and when it ran.
            frac = left / energy
            time_g += frac * sum(r.scope2_location_g for r in brs)
            row.uncovered_kwh += left
    row.time_shift_kg = time_g / 1000.0
    if row.uncovered_kwh:
        row.notes.append(f"{row.uncovered_kwh:.3f} kWh found no allowed hour with intensity and was kept as run")
    # Site shift: same hours, each allowed site.
    if fw.sites:
        best: tuple[float, str] | None = None
        for site in fw.sites:
            g, missing = 0.0, 0
            for r in rs:
                f = factor(site, r.hour_utc)
                if f is None:
                    missing += 1
                    break
                g += r.it_kwh * f[0] * f[1]
            if missing:
                row.notes.append(f"site {site}: intensity missing for some hours, not considered")
                continue
            if best is None or g < best[0]:
                best = (g, site)
        if best is not None:
            row.site_shift_kg, row.best_site = best[0] / 1000.0, best[1]
    return row


def shift_table_markdown(rows: Sequence[ShiftRow], title: str = "Shift analysis (flexible work)") -> str:
    """A Markdown table for the monthly report."""
    lines = [f"### {title}", "",
             "Emitted (location-based Scope 2) vs the same energy in the cleanest allowed hours of its window "
             "(at most its peak hourly energy per hour) or at the cleanest allowed site.", "",
             "| Workload | IT kWh | Emitted kgCO2e | Cleanest hours kgCO2e | Cleanest site | Site kgCO2e | Saving |",
             "|---|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        site_kg = "" if r.site_shift_kg is None else f"{r.site_shift_kg:,.2f}"
        saving = "" if r.saving_ratio is None else f"{r.saving_ratio:.1%}"
        lines.append(f"| {r.kind}={r.key} | {r.it_kwh:,.2f} | {r.actual_kg:,.2f} | {r.time_shift_kg:,.2f} | "
                     f"{r.best_site or ''} | {site_kg} | {saving} |")
    if not rows:
        lines.append("| (no flexible work in the period) | | | | | | |")
    return "\n".join(lines) + "\n"


def energy_rows_from_store(con: Any, start: datetime, end: datetime) -> list[EnergyHour]:
    """Hourly energy per site, namespace and team from ``fact_workload_hour`` (sql/queries/plan/shift.sql)."""
    rows = con.execute(sql_text("queries/plan/shift.sql#energy"), {"start": naive_utc(start), "end": naive_utc(end)}
                       ).fetchall()
    return [EnergyHour(h.replace(tzinfo=UTC), s, ns, t, it, fac or 0.0, g or 0.0) for h, s, ns, t, it, fac, g in rows]


def factor_from_store(con: Any, cfg: Any, start: datetime, end: datetime) -> SiteHourFactor:
    """(PUE, average g/kWh) per site and hour: PUE from the facility config, intensity from staging."""
    table: dict[tuple[str, datetime], float] = {}
    for zone, hour, g in con.execute(sql_text("queries/plan/shift.sql#zone_intensity"),
                                     {"start": naive_utc(start), "end": naive_utc(end)}).fetchall():
        table[(zone, hour.replace(tzinfo=UTC))] = g

    def factor(site: str, hour: datetime) -> tuple[float, float] | None:
        s = cfg.sites.get(site)
        if s is None:
            return None
        g = table.get((s.zone, hour))
        return None if g is None else (site_pue_at(s, hour)[0], g)
    return factor


def shift_table_html(rows: Sequence[ShiftRow], title: str = "Shift analysis (flexible work)") -> str:
    """The same table as :func:`shift_table_markdown`, for the HTML report."""
    head = ("Workload", "IT kWh", "Emitted kgCO2e", "Cleanest hours kgCO2e", "Cleanest site", "Site kgCO2e",
            "Saving")
    body = []
    for r in rows:
        cells = (f"{r.kind}={r.key}", f"{r.it_kwh:,.2f}", f"{r.actual_kg:,.2f}", f"{r.time_shift_kg:,.2f}",
                 r.best_site or "", "" if r.site_shift_kg is None else f"{r.site_shift_kg:,.2f}",
                 "" if r.saving_ratio is None else f"{r.saving_ratio:.1%}")
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    if not rows:
        body.append(f"<tr><td colspan='{len(head)}'>(no flexible work in the period)</td></tr>")
    return (f"<h2>{html.escape(title)}</h2><p>Emitted (location-based Scope 2) vs the same energy in the cleanest "
            "allowed hours of its window (at most its peak hourly energy per hour) or at the cleanest allowed "
            "site.</p><table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(body) + "</tbody></table>")


def report_rows(con: Any, cfg: Any, start: datetime, end: datetime) -> list[ShiftRow] | None:
    """The shift analysis of [start, end) for the monthly report; None when the config marks no work flexible.

    The flexible workloads are the facility config's ``flexible:`` list
    (``cfg.flexible``, parsed by :func:`parse_flexible`); energy and the
    emitted figure come from ``fact_device_hour``, counterfactual intensity
    from the staged average intensity of each allowed site's zone.
    """
    flexible = list(getattr(cfg, "flexible", None) or []) if cfg is not None else []
    if not flexible:
        return None
    s = start if start.tzinfo else start.replace(tzinfo=UTC)
    e = end if end.tzinfo else end.replace(tzinfo=UTC)
    return shift_analysis(energy_rows_from_store(con, s, e), flexible, factor_from_store(con, cfg, s, e), s, e)


def report_section(con: Any, cfg: Any, start: datetime, end: datetime) -> tuple[str, str] | None:
    """(Markdown, HTML) of the shift analysis on its own (:func:`report_rows` as tables); None as there."""
    rows = report_rows(con, cfg, start, end)
    if rows is None:
        return None
    md = shift_table_markdown(rows).replace("### ", "## ", 1)
    notes = [f"- {r.kind}={r.key}: {n}" for r in rows for n in r.notes]
    html_text = shift_table_html(rows)
    if notes:
        md += "\n" + "\n".join(notes) + "\n"
        html_text += "<ul>" + "".join(f"<li>{html.escape(n[2:])}</li>" for n in notes) + "</ul>"
    return md, html_text
