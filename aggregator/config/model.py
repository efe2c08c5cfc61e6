"""The facility configuration as validated values: sites, Scope 1, instruments, embodied, budgets, flexible work.

Only data and the small questions asked of it (PUE at an hour, which site a
node is in) live here; reading and validating the YAML is :mod:`.load`'s job,
so code that only consumes a config imports no parser.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from wattfleet.aggregator.store.settings import StoreSettings

DIESEL_KG_PER_LITER = 2.68
INSTRUMENT_TYPES = ("ppa", "rec", "go", "green_tariff")


@dataclass(frozen=True)
class PueMeter:
    """Metered facility and IT energy for one period [start, end)."""

    start: datetime
    end: datetime
    total_kwh: float
    it_kwh: float

    @property
    def pue(self) -> float:
        return self.total_kwh / self.it_kwh


@dataclass(frozen=True)
class Site:
    name: str
    zone: str
    grid: dict[str, Any]
    pue: float | None
    pue_meter: tuple[PueMeter, ...]
    wue_liters_per_kwh: float
    offsite_water_liters_per_kwh: float | None
    residual_mix_grams_per_kwh: float | None
    upstream_grams_per_kwh: float
    nodes: tuple[str, ...]
    overhead_ratio: float
    overhead_watts_per_node: float
    cost_per_kwh: float | None = None  # energy price per facility kWh, for `wattfleet plan` (any currency)
    residual_mix_source: str | None = None  # where the residual-mix factor comes from (publisher, edition, year)


@dataclass(frozen=True)
class Scope1Source:
    site: str
    kind: str  # diesel | refrigerant
    month: date
    quantity: float  # litres or kg
    kg_co2e_per_unit: float  # kgCO2e per litre, or GWP
    label: str = ""

    @property
    def kg_co2e(self) -> float:
        return self.quantity * self.kg_co2e_per_unit


@dataclass(frozen=True)
class Instrument:
    name: str
    type: str
    site: str | None
    market: str | None
    start: datetime
    end: datetime
    mwh: float
    grams_per_kwh: float
    hourly_matched: bool


@dataclass(frozen=True)
class Acquisition:
    """Units of an embodied entry's hardware acquired on one day: the GHG inventory's capital-goods input."""

    acquired: date
    units: int
    site: str | None = None  # None: held centrally, reported on no site


@dataclass(frozen=True)
class Embodied:
    """Cradle-to-gate kgCO2e of one unit (a GPU or a node), its service life and the units acquired.

    The same figure feeds both embodied views: amortized per hour of use (SCI) and, in full, in the
    reporting year of each acquisition (GHG Protocol Scope 3 Category 2).
    """

    gpu_model: str | None
    node: str | None
    kg_co2e: float
    life_years: float
    acquisitions: tuple[Acquisition, ...] = ()


@dataclass(frozen=True)
class Budget:
    owner_kind: str  # team | model | site
    owner: str
    month: date
    kg_co2e: float


@dataclass(frozen=True)
class TeamRule:
    """``teams:`` entry: energy of workloads whose labels match every glob given belongs to ``team``.

    Globs on the workload series' namespace, owner workload (``deployment/web``, ``slurm/*``),
    cluster and node; the first rule in file order that matches wins (sql/facts/slice/060_workload_hour.sql).
    """

    team: str
    namespace: str | None = None
    workload: str | None = None
    cluster: str | None = None
    node: str | None = None


@dataclass(frozen=True)
class FlexibleWorkload:
    """Work that may move: ``kind`` namespace|team, ``match`` a glob on that label."""

    kind: str
    match: str
    window_hours: int = 24
    allowed_hours_utc: frozenset[int] | None = None  # hours of day the work may run; None = any
    sites: tuple[str, ...] = ()  # sites it may move to; () = its own site only


@dataclass
class FacilityConfig:
    path: str
    sites: dict[str, Site]
    scope1: list[Scope1Source] = field(default_factory=list)
    instruments: list[Instrument] = field(default_factory=list)
    embodied: list[Embodied] = field(default_factory=list)
    budgets: list[Budget] = field(default_factory=list)
    flexible: list[FlexibleWorkload] = field(default_factory=list)  # work that may move in time/place
    teams: list[TeamRule] = field(default_factory=list)  # workload -> team, first match wins
    store: StoreSettings = field(default_factory=StoreSettings)  # DuckDB memory, threads, spill directory
    sha256: str = ""  # of the config file's bytes: the config version a report states

    def site_for_node(self, node: str, label_site: str = "") -> str | None:
        """Config globs first (in file order), then the exporter's ``site`` label."""
        for site in self.sites.values():
            if any(fnmatch.fnmatchcase(node, pattern) for pattern in site.nodes):
                return site.name
        return label_site if label_site in self.sites else None

    def zones(self) -> list[str]:
        return sorted({s.zone for s in self.sites.values()})
