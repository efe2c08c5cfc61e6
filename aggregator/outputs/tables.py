"""Report tables as files: CSV and Parquet of a SQL result or of rows computed in Python.

Every report table ships in both formats from DuckDB's ``COPY``, so the CSV
of a SQL table and of a Python table (the per-engine figures) are written
the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from wattfleet.aggregator.inference.derived import JOULES_PER_KWH, PhaseFigures, PromptFigures

# The per-engine table's columns and their DuckDB types (the CSV/Parquet schema), in one list.
ENGINE_REPORT_SCHEMA = (
    ("engine", "VARCHAR"), ("model", "VARCHAR"), ("method", "VARCHAR"),
    ("joules_per_prefill_token", "DOUBLE"), ("joules_per_decode_token", "DOUBLE"), ("joules_per_request", "DOUBLE"),
    ("tokens_per_joule", "DOUBLE"), ("scope2_location_g_per_1k_tokens", "DOUBLE"), ("requests", "DOUBLE"),
    ("hours_without_phase_energy", "BIGINT"), ("fit_status", "VARCHAR"), ("fit_r_squared", "DOUBLE"),
    ("fit_intervals", "BIGINT"), ("fit_reason", "VARCHAR"),
    # prompt tokens by source (issue 14)
    ("prompt_split", "VARCHAR"), ("joules_per_computed_prefill_token", "DOUBLE"), ("cache_hit_ratio", "DOUBLE"),
    ("transferred_prompt_ratio", "DOUBLE"), ("fit_cached_tokens", "VARCHAR"),
    # the exporter's statement of the attribution's assumption (TGI chunked prefill, SGLang phase time)
    ("phase_attribution", "VARCHAR"),
)
ENGINE_REPORT_COLUMNS = tuple(name for name, _ in ENGINE_REPORT_SCHEMA)
# PhaseFigures' names of columns 3-7: the report names the per-token emissions for what they include
# (location-based Scope 2 only; the SCI figures with embodied carbon are in the sci table).
PHASE_FIGURES = ("joules_per_prefill_token", "joules_per_decode_token", "joules_per_request", "tokens_per_joule",
                 "grams_co2e_per_1k_tokens")
_TYPES = tuple(kind for _, kind in ENGINE_REPORT_SCHEMA)


def engine_report_table(cols: Sequence[str], rows: Sequence[Sequence[Any]]
                        ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Report rows per engine and model from ``inference_engine_inputs`` (sql/queries/report/tables.sql).

    The figures are :class:`PhaseFigures`' (the same definitions as the
    exporter's derived series): per-token by phase from IT energy, per request
    and tokens per joule with all the engine's energy (idle included), and
    gCO2e per 1k tokens from the hourly location-based Scope 2 of that energy (kg in the inputs).
    They cover only engine-hours with attributed phase energy (the inputs
    say how many hours had none); an engine with none at all (its fit
    declined) gets no figures rather than a misleading 0 J/token.

    Prompt tokens (:class:`PromptFigures`): ``prompt_split`` says whether the
    engine split them into computed, cached and transferred (``not split by
    engine``: its ``joules_per_prefill_token`` counts cache hits as prefill
    tokens, and it has no J per computed prefill token nor cache hit ratio).
    """
    out = []
    for row in rows:
        r = dict(zip(cols, row, strict=True))
        fig = PhaseFigures((r["prefill_kwh"] or 0.0) * JOULES_PER_KWH, (r["decode_kwh"] or 0.0) * JOULES_PER_KWH,
                           (r["idle_kwh"] or 0.0) * JOULES_PER_KWH, r["prefill_tokens"] or 0.0,
                           r["decode_tokens"] or 0.0, r["attributed_requests"] or 0.0)
        figures = fig.as_row(grams=(r["scope2_location_kg"] or 0.0) * 1000.0)
        values = [figures[c] for c in PHASE_FIGURES] if fig.total_joules > 0 else [None] * 5
        prompt = PromptFigures(r["computed_tokens"] or 0.0, r["cached_tokens"] or 0.0, r["transferred_tokens"] or 0.0,
                               r["unsplit_tokens"] or 0.0, r["split_node_hours"] or 0, r["unsplit_node_hours"] or 0,
                               (r["split_prefill_kwh"] or 0.0) * JOULES_PER_KWH, r["split_prefill_tokens"] or 0.0)
        out.append((r["engine"], r["model"], r["methods"] or "-", *values, r["requests"],
                    r["hours_without_phase_energy"], r["fit_status"], r["fit_r_squared"], r["fit_intervals"],
                    r["fit_reason"], prompt.split_label, prompt.joules_per_computed_prefill_token,
                    prompt.cache_hit_ratio, prompt.transferred_ratio, r["fit_cached_term"],
                    r["phase_attribution"]))
    return list(ENGINE_REPORT_COLUMNS), out


def copy_table(con: duckdb.DuckDBPyConnection, table: str, out: Path, name: str) -> list[Path]:
    """``table`` as ``out/name.csv`` and ``out/name.parquet``, the formats every report table ships in."""
    paths = []
    for fmt, ext in (("CSV, HEADER", "csv"), ("PARQUET", "parquet")):
        path = out / f"{name}.{ext}"
        con.execute(f"COPY {table} TO '{str(path).replace(chr(39), chr(39) * 2)}' (FORMAT {fmt})")
        paths.append(path)
    return paths


def write_table(out: Path, name: str, cols: Sequence[str], rows: Sequence[Sequence[Any]],
                period: tuple[datetime, datetime] | None = None) -> list[Path]:
    """CSV and Parquet of a table computed in Python, like the SQL tables next to it (which start with
    ``period_start`` and ``period_end``: give ``period`` and so does this one)."""
    mem = duckdb.connect()
    try:
        types = _TYPES if tuple(cols) == ENGINE_REPORT_COLUMNS else ("VARCHAR",) * len(cols)
        if period is not None:
            cols, types = ["period_start", "period_end", *cols], ("TIMESTAMP", "TIMESTAMP", *types)
            rows = [(*period, *r) for r in rows]
        mem.execute("CREATE TABLE t (" + ", ".join(f'"{c}" {t}' for c, t in zip(cols, types, strict=True)) + ")")
        if rows:
            mem.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(cols))})", [list(r) for r in rows])
        return copy_table(mem, "t", out, name)
    finally:
        mem.close()
