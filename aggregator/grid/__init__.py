"""Grid carbon-intensity inputs: every source normalised to hourly IntensityRow.

Start with :func:`load_intensity` (one facility spec -> complete hourly rows
plus a gap report); the per-source loaders and clients are exported for
direct use and tests.
"""

from wattfleet.aggregator.grid.eia930 import Eia930File, EmptyHour, load_eia930, read_eia930
from wattfleet.aggregator.grid.electricitymaps import (
    ElectricityMapsClient,
    load_electricitymaps_csv,
    parse_carbon_intensity_json,
)
from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.grid.gaps import DEFAULT_CHAIN, RULES, Fill, GapReport, fill_gaps, find_missing, parse_chain
from wattfleet.aggregator.grid.httpjson import JsonHttp
from wattfleet.aggregator.grid.model import IntensityRow, Signal
from wattfleet.aggregator.grid.sources import IntensityLoad, load_intensity, zone_check
from wattfleet.aggregator.grid.spec import SOURCES
from wattfleet.aggregator.grid.static import (
    DEFAULT_TABLE,
    AnnualFactor,
    annual_factor,
    load_static_table,
    make_table,
    static_rows,
)
from wattfleet.aggregator.grid.ukcarbon import UkCarbonClient, parse_national_json, parse_regional_json
from wattfleet.aggregator.grid.watttime import (
    LBS_PER_MWH_TO_G_PER_KWH,
    WattTimeClient,
    lbs_per_mwh_to_g_per_kwh,
    parse_watttime_json,
)

__all__ = [
    "DEFAULT_CHAIN",
    "DEFAULT_TABLE",
    "LBS_PER_MWH_TO_G_PER_KWH",
    "RULES",
    "SOURCES",
    "AnnualFactor",
    "Eia930File",
    "ElectricityMapsClient",
    "EmptyHour",
    "Fill",
    "GapReport",
    "GridDataError",
    "IntensityLoad",
    "IntensityRow",
    "JsonHttp",
    "Signal",
    "UkCarbonClient",
    "WattTimeClient",
    "annual_factor",
    "fill_gaps",
    "find_missing",
    "lbs_per_mwh_to_g_per_kwh",
    "load_eia930",
    "load_electricitymaps_csv",
    "load_intensity",
    "load_static_table",
    "make_table",
    "parse_carbon_intensity_json",
    "parse_chain",
    "parse_national_json",
    "parse_regional_json",
    "parse_watttime_json",
    "read_eia930",
    "static_rows",
    "zone_check",
]
