"""Report tables for people: labels in words with units, one format per column, wide tables fitted."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wattfleet.aggregator.outputs.labels import LABELS, label
from wattfleet.aggregator.outputs.markup import MAX_COLUMNS, decimals_for, fit, grid, html_table, md_table


def test_labels_are_words_with_units_and_unknown_columns_get_one_from_their_name():
    assert label("scope2_location_kg").header == "Scope 2, location-based (kg CO2e)"
    assert label("cfe_ratio").kind == "pct" and label("cfe_ratio").unit == "%"
    guessed = label("gpu_idle_kwh")  # not in the map: words and unit from the name
    assert (guessed.words, guessed.unit) == ("GPU idle", "kWh")
    assert label("team_carbon_g").unit == "g CO2e" and label("queue_share").kind == "pct"
    assert label("scope3_kg_co2e").header == "Scope3 (kg CO2e)"
    assert all("_" not in lab.words for lab in LABELS.values())


def test_a_column_shares_its_decimals_and_text_is_left_numbers_right():
    g = grid(["site", "it_kwh", "cfe_ratio", "readings"], [("a", 1234.5, 0.5, 1200), ("b", 3.25, None, 3)])
    assert g.rows == [["a", "1,234", "50.0", "1,200"], ["b", "3", "-", "3"]]
    assert g.numeric == [False, True, True, True]
    md = md_table(["site", "it_kwh"], [("a", 1.5), ("b", 12.75)])
    assert md.splitlines()[:2] == ["| Site | IT energy (kWh) |", "|---|---:|"]
    assert md.splitlines()[2:] == ["| a | 1.5 |", "| b | 12.8 |"]
    assert "<td class='text'>a</td><td class='num'>1.50</td>" in html_table(["site", "it_kwh"], [("a", 1.5)])


@given(st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=1, max_size=20))
def test_the_largest_figure_keeps_three_significant_digits(values):
    biggest = max(abs(v) for v in values)
    d = decimals_for(values)
    if biggest >= 100 or biggest == 0:
        assert d == 0
    elif biggest >= 1e-4:
        digits = f"{biggest:.{d}f}".replace(".", "").lstrip("0")
        assert len(digits) in (3, 4)  # 4 only when rounding carries (9.995 -> 10.00)


def test_a_column_of_mixed_units_formats_each_row_to_its_own_digits():
    g = grid(["figure", "quantity", "unit"], [("per 1k tokens", 0.0141, "g"), ("per GPU-hour", 144.2, "g")])
    assert [r[1] for r in g.rows] == ["0.0141", "144"]
    assert grid(["residual_mix_missing"], [(True,), (False,)]).rows == [["yes"], ["no"]]


def test_wide_tables_split_with_their_key_column_and_records_turn_on_their_side():
    cols = ["site"] + [f"x{i}_kwh" for i in range(14)]
    parts = fit(grid(cols, [("a", *range(14)), ("b", *range(14))]))
    assert [len(p.headers) for p in parts] == [6, 6, 5]  # balanced: 5 + 5 + 4 figures, the site in each
    assert all(p.headers[0].words == "Site" and len(p.headers) <= MAX_COLUMNS for p in parts)
    record = fit(grid(["hours_with_data", "estimated_share", "unmapped_nodes", "readings"], [(744, 0.1, 0, 2)]),
                 record=True)
    assert len(record) == 1 and record[0].rows[0] == ["Hours with data (h)", "744"]
    one_row = fit(grid(["kind", "owner", "budget_kg", "used_kg"], [("site", "a", 1.0, 2.0)]))
    assert len(one_row[0].headers) == 4  # one row this month, not a record: stays a table
    assert "|---|---:|" in md_table(["hours_with_data", "unmapped_nodes", "readings", "tokens"], [(1, 2, 3, 4)],
                                    record=True)


def test_markdown_cells_escape_pipes_and_total_rows_are_bold_not_a_column():
    assert "| a\\|b |" in md_table(["reason"], [("a|b",)])
    md = md_table(["scope", "location_based_kg_co2e", "is_total"], [("Scope 1", 1.0, False), ("Total", 1.0, True)])
    assert md.splitlines() == ["| Scope | Location-based (kg CO2e) |", "|---|---:|", "| Scope 1 | 1.00 |",
                               "| **Total** | **1.00** |"]
    assert "<tr class='total'><td class='text'>Total</td>" in html_table(["scope", "is_total"], [("Total", True)])
