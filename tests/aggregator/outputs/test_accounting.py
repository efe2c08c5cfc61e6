"""The report's accounting outputs: GHG inventory (Category 2 at acquisition), totals kept apart, the
summary's GHG Protocol names, the amortized per-use (SCI) view, node rankings without Scope 1, and analyst
files with periods and one unit per kind.

One two-site month is built in DuckDB and reported once; each test reads the files an analyst would load.
"""

from __future__ import annotations

import csv
import hashlib
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from paths import REPO
from wattfleet import sql
from wattfleet.aggregator.config.load import load_facility
from wattfleet.aggregator.outputs.columns import PERIOD, TABLES, readme_text
from wattfleet.aggregator.outputs.methodology import FORMULAS
from wattfleet.aggregator.outputs.report import write_report
from wattfleet.aggregator.store.database import LATEST_VERSION, load_dimensions, open_store, rebuild_month

H100 = "NVIDIA H100 80GB HBM3"
FACILITY = """\
version: 1
sites:
  - name: a
    zone: CISO
    grid: {source: static, grams_per_kwh: 250}
    pue: 1.5
    wue_liters_per_kwh: 1.8
    residual_mix_grams_per_kwh: 400
    residual_mix_source: "AIB European Residual Mixes 2025 (test value)"
    nodes: ["a-*"]
  - name: b
    zone: SE
    grid: {source: static}
    pue: 1.1
    wue_liters_per_kwh: 0.5
    nodes: ["b-*"]
scope1:
  diesel:
    - {site: b, month: 2026-10, liters: 100}
  refrigerant:
    - {site: a, month: 2026-10, gas: R-410A, kg: 2, gwp: 2088}
    - {site: a, month: 2026-11, gas: R-410A, kg: 9, gwp: 2088}
instruments:
  - {name: a-rec, type: rec, site: a, start: 2026-10-01, end: 2026-11-01, mwh: 0.002, grams_per_kwh: 0}
embodied:
  - gpu_model: "*H100*"
    kg_co2e: 164
    life_years: 4
    acquisitions:
      - {date: 2026-10-03, units: 8, site: a}
      - {date: 2026-10-20, units: 4}
      - {date: 2026-09-30, units: 100, site: b}
  - {node: "a-*", kg_co2e: 1500, life_years: 5, acquisitions: [{date: 2026-10-31, units: 1, site: a}]}
"""
HOURS = 4
GHG_NAMES = {
    ("Scope 1", "Stationary combustion"), ("Scope 1", "Fugitive emissions"), ("Scope 2", "Purchased electricity"),
    ("Scope 3", "Category 2: Capital goods"),
    ("Scope 3", "Category 3: Fuel- and energy-related activities (not included in Scope 1 or Scope 2)"),
}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("accounting")
    (d / "facility.yaml").write_text(FACILITY)
    cfg = load_facility(d / "facility.yaml")
    db = d / "fleet.duckdb"
    con = open_store(str(db))
    load_dimensions(con, cfg)
    ins = "INSERT INTO stg_energy_hourly VALUES (?, ?, 'c1', NULL, ?, ?, ?, ?, ?, ?, 'prometheus')"
    for h in range(HOURS):
        hour = datetime(2026, 10, 5, h)
        con.execute("INSERT INTO stg_grid_intensity VALUES ('CISO', ?, 'average', 250, 0.5, 'static', false, NULL)",
                    [hour])
        con.execute("INSERT INTO stg_grid_intensity VALUES ('SE', ?, 'average', 20, 0.9, 'static', false, NULL)",
                    [hour])
        for gpu in ("0", "1"):
            con.execute(ins, [hour, "a-gpu-1", gpu, "gpu", "gpu", H100, "measured", 0.5 * 3.6e6])
        con.execute(ins, [hour, "a-gpu-1", "0", "cpu", "package", None, "measured", 0.2 * 3.6e6])
        con.execute(ins, [hour, "b-gpu-1", "0", "gpu", "gpu", H100, "measured", 0.4 * 3.6e6])
        for phase, kwh, tokens in (("prefill", 0.1, 1000), ("decode", 0.2, 500)):
            con.execute("INSERT INTO stg_inference_hourly VALUES (?, 'b-gpu-1', 'c1', NULL, 'vllm', 'llama', "
                        "?, ?, ?, 'prometheus')", [hour, phase, kwh * 3.6e6, tokens])
    rebuild_month(con, date(2026, 10, 1))
    con.close()
    out = d / "report"
    write_report(db, "2026-10", out, cfg)
    return db, out


def grouped(sha: str) -> str:
    """A hash as the methodology prints it: groups of 8 hex digits."""
    return " ".join(sha[i:i + 8] for i in range(0, len(sha), 8))


def rows(out: Path, name: str) -> list[dict[str, str]]:
    with open(out / f"{name}.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def facts(db: Path, expr: str, where: str = "true") -> float:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(f"SELECT {expr} FROM fact_device_hour WHERE {where}").fetchone()
        return float(row[0] or 0.0) if row else 0.0
    finally:
        con.close()


def test_inventory_counts_capital_goods_in_full_in_the_period_of_acquisition(report):
    db, out = report
    inv = rows(out, "ghg_inventory")
    cat2 = {r["site"]: float(r["quantity"]) for r in inv if r["category"] == "Category 2: Capital goods"}
    # October: 8 GPUs at a + the node at a, 4 GPUs held centrally; the 100 GPUs of 2026-09-30 are September's.
    assert cat2 == {"a": pytest.approx(8 * 164 + 1500), "(no site)": pytest.approx(4 * 164)}
    # The amortized view is a different figure, in the facts and the SCI table, not in the inventory.
    amortized_kg = facts(db, "sum(scope3_embodied_g)") / 1000
    assert 0 < amortized_kg < 1 and not any("amortized" in r["category"].lower() for r in inv)


def test_inventory_is_tidy_components_with_ghg_protocol_names(report):
    _, out = report
    inv = rows(out, "ghg_inventory")
    assert list(inv[0]) == ["period_start", "period_end", "site", "scope", "category", "basis", "quantity", "unit"]
    assert {r["unit"] for r in inv} == {"kg CO2e"}
    assert {(r["period_start"], r["period_end"]) for r in inv} == {("2026-10-01 00:00:00", "2026-11-01 00:00:00")}
    assert {(r["scope"], r["category"]) for r in inv} == GHG_NAMES
    assert {r["basis"] for r in inv if r["scope"] == "Scope 2"} == {"location-based", "market-based"}
    assert {r["basis"] for r in inv if r["scope"] != "Scope 2"} == {"both"}
    scope1 = {(r["site"], r["category"]): float(r["quantity"]) for r in inv if r["scope"] == "Scope 1"}
    # From the config's site-months (November's leak is not October's), and at the site only.
    assert scope1 == {("a", "Fugitive emissions"): pytest.approx(2 * 2088),
                      ("b", "Stationary combustion"): pytest.approx(100 * 2.68)}


def test_totals_are_their_own_table_and_equal_the_inventory_components(report):
    db, out = report
    inv = rows(out, "ghg_inventory")
    totals = {(r["level"], r["site"], r["scope"], r["basis"]): float(r["quantity"]) for r in rows(out, "ghg_totals")}
    for basis in ("location-based", "market-based"):
        want = sum(float(r["quantity"]) for r in inv if r["basis"] in (basis, "both"))
        assert totals[("organisation", "", "Scope 1 + Scope 2 + Scope 3", basis)] == pytest.approx(want)
        site_sum = sum(v for (lvl, _, scope, b), v in totals.items()
                       if lvl == "site" and scope == "Scope 1 + Scope 2 + Scope 3" and b == basis)
        assert site_sum == pytest.approx(want)
    assert totals[("organisation", "", "Scope 2", "location-based")] == \
        pytest.approx(facts(db, "sum(scope2_location_g)") / 1000)
    assert totals[("organisation", "", "Scope 2", "market-based")] == \
        pytest.approx(facts(db, "sum(scope2_market_g)") / 1000)


def test_summary_puts_location_and_market_side_by_side_and_marks_totals(report):
    _, out = report
    summary = rows(out, "ghg_summary")
    assert list(summary[0]) == ["period_start", "period_end", "scope", "category", "location_based_kg_co2e",
                                "market_based_kg_co2e", "is_total"]
    lines = [r for r in summary if r["is_total"] == "false"]
    assert {(r["scope"], r["category"]) for r in lines} == GHG_NAMES
    (grand,) = [r for r in summary if r["category"] == "Total"]
    for col in ("location_based_kg_co2e", "market_based_kg_co2e"):
        assert float(grand[col]) == pytest.approx(sum(float(r[col]) for r in lines))
    s2 = next(r for r in lines if r["scope"] == "Scope 2")
    assert float(s2["market_based_kg_co2e"]) != pytest.approx(float(s2["location_based_kg_co2e"]))
    md = (out / "report.md").read_text()
    assert "| Scope 3 | Category 2: Capital goods |" in md and "tCO2e" not in md


def test_node_ranking_uses_the_emissions_nodes_cause_not_site_scope1(report):
    db, out = report
    top = {r["node"]: r for r in rows(out, "top_emitters")}
    for node in ("a-gpu-1", "b-gpu-1"):
        caused = facts(db, "sum(scope2_location_g + scope3_embodied_g)", f"node = '{node}'") / 1000
        assert float(top[node]["caused_location_kg"]) == pytest.approx(caused)
    # Site a's refrigerant leak (4,176 kg) would otherwise make a-gpu-1 a refrigerant emitter.
    assert float(top["a-gpu-1"]["caused_location_kg"]) < 10
    assert "scope1_kg" not in top["a-gpu-1"]
    dims = rows(out, "by_dimension")
    assert all(r["scope1_kg"] == "" for r in dims if r["dimension"] not in ("fleet", "site"))


def test_sci_figures_state_functional_unit_and_boundary(report):
    db, out = report
    sci = {(r["figure"], r["subject"]): r for r in rows(out, "sci")}
    gpu_hours = 3 * HOURS
    boards = sci[("sci_g_per_gpu_hour_gpu_boards", "fleet")]
    want = facts(db, "sum(scope2_location_g + scope3_embodied_g)", "component = 'gpu'") / gpu_hours
    assert float(boards["quantity"]) == pytest.approx(want)
    assert boards["functional_unit"] == "one GPU-hour" and boards["unit"] == "g CO2e per GPU-hour"
    assert float(boards["functional_units"]) == gpu_hours
    nodes = sci[("sci_g_per_gpu_hour_whole_nodes", "fleet")]
    assert float(nodes["quantity"]) == pytest.approx(facts(db, "sum(scope2_location_g + scope3_embodied_g)")
                                                     / gpu_hours)
    assert "CPU" in nodes["boundary"] and "CPU" not in boards["boundary"]
    tokens = sci[("sci_g_per_1k_tokens", "vllm / llama")]
    assert float(tokens["functional_units"]) == pytest.approx(HOURS * 1.5)  # 1,500 tokens an hour
    for r in sci.values():
        assert r["boundary"] and r["functional_unit"] and r["unit"].startswith("g CO2e per ")


def test_every_analyst_file_has_its_period_and_one_unit_per_kind(report):
    _, out = report
    for path in sorted(out.glob("*.csv")):
        with open(path, newline="") as fh:
            header = next(csv.reader(fh))
        assert header[:2] == ["period_start", "period_end"], path.name
        for col in header:
            # emissions in kg (names end _kg or _kg_co2e), rates say their unit (g ... per ...)
            assert not col.endswith(("_g", "_t", "_tco2e", "_grams")), (path.name, col)
            assert "tco2e" not in col, (path.name, col)


def test_market_based_transparency_per_site(report):
    db, out = report
    inst = rows(out, "market_instruments")
    assert [(r["site"], r["instrument"], r["type"], r["claimed_for"]) for r in inst] == [("a", "a-rec", "rec", "site")]
    (r,) = inst
    assert (r["vintage_start_utc"], r["vintage_end_utc"]) == ("2026-10-01 00:00:00", "2026-11-01 00:00:00")
    assert float(r["allocated_kwh"]) == pytest.approx(2.0) and float(r["applied_kwh"]) == pytest.approx(2.0)
    cov = {r["site"]: r for r in rows(out, "market_coverage")}
    facility_a = facts(db, "sum(facility_kwh)", "site = 'a'")
    assert float(cov["a"]["coverage_percent"]) == pytest.approx(100 * 2.0 / facility_a)
    assert float(cov["a"]["residual_mix_g_per_kwh"]) == 400
    assert cov["a"]["residual_mix_source"] == "AIB European Residual Mixes 2025 (test value)"
    assert cov["b"]["residual_mix_missing"] == "true" and cov["b"]["residual_mix_source"].startswith("none")
    # The market-based figure is exactly the applied instruments at their factor plus the rest at the residual mix.
    want_kg = (2.0 * 0 + (facility_a - 2.0) * 400) / 1000
    assert float(cov["a"]["scope2_market_kg"]) == pytest.approx(want_kg)


def test_instruments_beyond_consumption_are_applied_only_up_to_it(tmp_path):
    cfg_text = FACILITY.replace("mwh: 0.002", "mwh: 1000")
    (tmp_path / "facility.yaml").write_text(cfg_text)
    cfg = load_facility(tmp_path / "facility.yaml")
    con = open_store(str(tmp_path / "f.duckdb"))
    load_dimensions(con, cfg)
    con.execute("INSERT INTO stg_energy_hourly VALUES ('2026-10-05 00:00', 'a-1', 'c1', NULL, '0', 'gpu', 'gpu', ?, "
                "'measured', 3.6e6, 'prometheus')", [H100])
    rebuild_month(con, date(2026, 10, 1))
    (allocated, applied, cons), = con.execute("SELECT allocated_kwh, applied_kwh, site_consumption_kwh "
                                              "FROM fact_instrument_month").fetchall()
    con.close()
    assert allocated == pytest.approx(1e6) and applied == pytest.approx(cons) and cons == pytest.approx(1.5)


def test_methodology_states_formulas_config_version_and_lineage(report):
    db, out = report
    md = (out / "report.md").read_text()
    section = md[md.index("## Methodology"):]
    sha = grouped(hashlib.sha256(FACILITY.encode()).hexdigest())
    assert f"| facts of 2026-10 built with | {db.parent / 'facility.yaml'} | {sha} |" in section
    def part(title: str) -> str:
        return section.split(f"### {title}")[1].split("\n### ")[0]

    assert f"| {LATEST_VERSION} |" in part("Data lineage: Store schema")
    assert str(db) in section
    for f in FORMULAS:
        assert f"| {f.figure} | {f.formula} |" in section
    telemetry = part("Data lineage: Energy telemetry")
    assert f"| prometheus | {HOURS} | 2 | 2026-10-05T00:00:00 | 2026-10-05T0{HOURS}:00:00 |" in telemetry
    grid = part("Data lineage: Grid intensity")
    assert f"| CISO | average | static | {HOURS} | 0 |" in grid
    assert "AIB European Residual Mixes 2025 (test value)" in part("Reference values: Site factors")
    assert "| 1 | GPU model *H100* | 164.0 | 4.0 | 12 |" in section
    assert "| b | diesel | diesel | 100.0 | L | 2.68 | kg CO2e per L |" in \
        part("Reference values: Scope 1 activity data")
    assert "<h2>Methodology</h2>" in (out / "report.html").read_text()


def test_every_formula_names_a_real_macro():
    macros = sql.file_text("macros.sql")
    for f in FORMULAS:
        assert f"MACRO {f.macro}(" in macros, f.macro


def test_the_readme_describes_every_column_of_every_file(report):
    _, out = report
    assert (out / "README.md").read_text() == readme_text()
    written = {p.stem for p in out.glob("*.csv")}
    assert written == set(TABLES), (written ^ set(TABLES))
    for path in out.glob("*.csv"):
        with open(path, newline="") as fh:
            header = next(csv.reader(fh))
        assert header[:2] == list(PERIOD)
        assert header[2:] == list(TABLES[path.stem][1]), path.name
    for path in out.glob("*.parquet"):
        con = duckdb.connect()
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall()]
        con.close()
        assert cols == [*PERIOD, *TABLES[path.stem][1]], path.name


def test_docs_report_columns_is_the_generated_readme():
    assert (REPO / "docs" / "report_columns.md").read_text() == readme_text()


def test_activity_data_is_tidy_and_adds_up_to_facility_energy_and_water(report):
    db, out = report
    act = rows(out, "activity_data")
    assert list(act[0]) == ["period_start", "period_end", "site", "scope", "category", "basis", "quantity", "unit"]
    assert {r["unit"] for r in act} == {"kWh", "L", "kg"}
    kwh = sum(float(r["quantity"]) for r in act if r["unit"] == "kWh")
    assert kwh == pytest.approx(facts(db, "sum(facility_kwh)"))
    litres = sum(float(r["quantity"]) for r in act if r["scope"] == "Water")
    assert litres == pytest.approx(facts(db, "sum(water_onsite_l + water_offsite_l)"))
    fuel = {(r["site"], r["category"], r["unit"]): float(r["quantity"]) for r in act if r["scope"] == "Scope 1"}
    assert fuel == {("a", "Fugitive emissions", "kg"): 2.0, ("b", "Stationary combustion", "L"): 100.0}


def test_lineage_names_the_config_the_facts_were_built_with(tmp_path):
    """A config loaded after the month was built (dimensions replaced, facts not rebuilt) shows as a second
    version: the report never claims the facts came from a config they did not."""
    built, later = FACILITY, FACILITY + "# edited after the month was built\n"
    (tmp_path / "built.yaml").write_text(built)
    (tmp_path / "later.yaml").write_text(later)
    db = tmp_path / "f.duckdb"
    con = open_store(str(db))
    load_dimensions(con, load_facility(tmp_path / "built.yaml"))
    con.execute("INSERT INTO stg_energy_hourly VALUES ('2026-10-05 00:00', 'a-1', 'c1', NULL, '0', 'gpu', 'gpu', ?, "
                "'measured', 3.6e6, 'prometheus')", [H100])
    rebuild_month(con, date(2026, 10, 1))
    load_dimensions(con, load_facility(tmp_path / "later.yaml"))
    con.close()
    out = tmp_path / "report"
    write_report(db, "2026-10", out)
    md = (out / "report.md").read_text()
    part = md.split("### Data lineage: Config version")[1].split("\n### ")[0]
    sha_built, sha_later = (grouped(hashlib.sha256(t.encode()).hexdigest()) for t in (built, later))
    assert f"| facts of 2026-10 built with | {tmp_path / 'built.yaml'} | {sha_built} |" in part
    assert f"{tmp_path / 'later.yaml'} | {sha_later} |" in part
