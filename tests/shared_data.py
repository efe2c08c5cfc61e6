"""Where the project's shared real data lives: ``../shared/data`` next to the checkout.

One definition for every test (``WATTFLEET_SHARED_DATA`` overrides it), so a
checkout in another place only needs that variable.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(os.environ.get("WATTFLEET_SHARED_DATA")
                   or Path(__file__).resolve().parents[2] / "shared" / "data")
EIA_DIR = SHARED_DATA / "grid-eia930-2022"
TRACES_DIR = SHARED_DATA / "workload-traces"
CISO = EIA_DIR / "CISO.csv"

import pytest  # noqa: E402

needs_ciso = pytest.mark.skipif(not CISO.exists(),
                                reason=f"shared EIA-930 data not found at {EIA_DIR} (set WATTFLEET_SHARED_DATA)")
needs_traces = pytest.mark.skipif(
    not TRACES_DIR.is_dir(), reason=f"shared workload traces not found at {TRACES_DIR} (set WATTFLEET_SHARED_DATA)")
