"""Loading grid intensity: one set-based replace of the loaded range per zone."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from fixtures.agg.pipeline import STATIC_SITE, T0, write_config
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.grid.errors import GridDataError
from wattfleet.aggregator.ingest.grid_load import load_grid
from wattfleet.aggregator.store.connection import open_store

H1 = T0 + timedelta(hours=1)


def test_grid_load_is_one_set_based_replace_last_duplicate_winning(tmp_path):
    cfg = load_facility(write_config(tmp_path, STATIC_SITE))
    con = open_store(":memory:")

    def row(hour, grams, filled=False):
        return SimpleNamespace(hour_utc=hour, signal="average", grams_per_kwh=grams, cfe_ratio=None, source="t",
                               filled=filled, fill_rule="previous_day_same_hour" if filled else None, implausible=None)

    def loader(rows):
        return lambda spec, start, end: SimpleNamespace(rows=rows, report=SimpleNamespace(notes=[]))

    end = T0 + timedelta(hours=3)
    load_grid(con, cfg, T0, end, loader([row(T0, 1.0), row(H1, 2.0), row(H1 + timedelta(hours=1), 3.0)]))
    # An hour without intensity refuses the window before anything is deleted or written.
    with pytest.raises(GridDataError, match=r"1 hour\(s\) without an average intensity"):
        load_grid(con, cfg, T0, end, loader([row(T0, 5.0), row(H1, 6.0), row(H1, 7.0, filled=True)]))
    assert con.execute("SELECT count(*) FROM stg_grid_intensity").fetchall() == [(3,)]
    h2 = H1 + timedelta(hours=1)
    n, filled, _ = load_grid(con, cfg, T0, end, loader([row(T0, 5.0), row(H1, 6.0), row(H1, 7.0, filled=True),
                                                        row(h2, 8.0)]))
    assert (n, filled) == (3, 1)  # H1 twice: the last row wins, as row-by-row INSERT OR REPLACE did
    assert con.execute("SELECT zone, hour_utc, grams_per_kwh, cfe_ratio, filled, fill_rule FROM stg_grid_intensity "
                       "ORDER BY hour_utc").fetchall() == [
        ("ZA", T0, 5.0, None, False, None), ("ZA", H1, 7.0, None, True, "previous_day_same_hour"),
        ("ZA", h2, 8.0, None, False, None)]
