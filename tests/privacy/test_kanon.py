"""k-anonymity: no published count below k, and no suppressed count recoverable from the
published ones (checked by linear programming, independently of the suppressor); the
microdata k-check."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from privacy.kanon import Relation, check_k, protect_cells, suppression_masks

K = 5


def cross_table(cells: list[list[int]]) -> tuple[list[int], list[Relation]]:
    """Interior cells, row totals, column totals and the grand total, with their relations."""
    rows, cols = len(cells), len(cells[0])
    values = [v for row in cells for v in row]
    row_total = [len(values) + i for i in range(rows)]
    values += [sum(row) for row in cells]
    col_total = [len(values) + j for j in range(cols)]
    values += [sum(cells[i][j] for i in range(rows)) for j in range(cols)]
    grand = len(values)
    values.append(sum(values[t] for t in row_total))
    relations: list[Relation] = [(row_total[i], [i * cols + j for j in range(cols)]) for i in range(rows)]
    relations += [(col_total[j], [i * cols + j for i in range(rows)]) for j in range(cols)]
    relations += [(grand, row_total), (grand, col_total)]
    return values, relations


def attacker_range(values: list[int], relations: list[Relation], hidden: set[int], cell: int) -> tuple[float, float]:
    """What an attacker can infer about one suppressed cell from everything published."""
    unknown = sorted(hidden)
    col = {c: i for i, c in enumerate(unknown)}
    a_eq, b_eq = [], []
    for total, parts in relations:
        row, rhs = [0.0] * len(unknown), 0.0
        for c, sign in [(total, 1), *((p, -1) for p in parts)]:
            if c in hidden:
                row[col[c]] += sign
            else:
                rhs -= sign * values[c]
        if any(row):
            a_eq.append(row)
            b_eq.append(rhs)
    goal = [1.0 if c == cell else 0.0 for c in unknown]
    low = linprog(goal, A_eq=a_eq or None, b_eq=b_eq or None, bounds=(0, None))
    high = linprog([-g for g in goal], A_eq=a_eq or None, b_eq=b_eq or None, bounds=(0, None))
    assert low.status == 0  # the published table is consistent: the true values are feasible
    return low.fun, (-high.fun if high.status == 0 else float("inf"))


tables = st.integers(2, 4).flatmap(
    lambda rows: st.integers(2, 4).flatmap(
        lambda cols: st.lists(
            st.lists(st.one_of(st.integers(0, 6), st.integers(0, 30)), min_size=cols, max_size=cols),
            min_size=rows,
            max_size=rows,
        )
    )
)


@settings(max_examples=300, deadline=None)
@given(tables)
def test_no_published_cell_is_below_k_and_no_suppressed_cell_can_be_derived(cells: list[list[int]]) -> None:
    values, relations = cross_table(cells)
    hidden = protect_cells(values, relations, K)
    assert all(not 0 < v < K for i, v in enumerate(values) if i not in hidden)
    for cell in hidden:
        low, high = attacker_range(values, relations, hidden, cell)
        assert high - low >= 1, (cell, values[cell], low, high)  # more than one value fits
        assert high >= K  # and it could be k or more: not even "small" is revealed


def flow_rows(entries: list[tuple[int, int, int]]) -> pa.Table:
    return pa.table(
        {
            "entries": [r + v for r, v, _ in entries],
            "resident_entries": [r for r, _, _ in entries],
            "visitor_entries": [v for _, v, _ in entries],
            "exits": [x for _, _, x in entries],
        }
    )


@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 12)), min_size=1, max_size=24))
def test_row_relations_of_a_feed_cannot_undo_suppression(entries: list[tuple[int, int, int]]) -> None:
    rows = flow_rows(entries)
    granted = ["entries", "resident_entries", "visitor_entries", "exits"]
    masks, report = suppression_masks(rows, granted, [("entries", ["resident_entries", "visitor_entries"])], K)
    for i, (resident, visitor, exits) in enumerate(entries):
        shown = {
            n: None if masks[n][i].as_py() else v
            for n, v in zip(granted, [resident + visitor, resident, visitor, exits], strict=True)
        }
        assert all(v is None or not 0 < v < K for v in shown.values())
        unknown = [n for n in ("entries", "resident_entries", "visitor_entries") if shown[n] is None]
        assert len(unknown) != 1  # one unknown in entries = resident + visitor would be recomputed
        if shown["entries"] is not None and unknown:
            assert shown["entries"] - sum(shown[n] or 0 for n in ("resident_entries", "visitor_entries")) >= K
    assert report.primary <= report.cells


def test_a_count_not_granted_counts_as_suppressed() -> None:
    rows = flow_rows([(10, 2, 7)])  # visitor 2 < k; entries 12 and resident 10 would give it away
    masks, _ = suppression_masks(
        rows, ["entries", "visitor_entries"], [("entries", ["resident_entries", "visitor_entries"])], K
    )
    # resident is never shown to this consumer, so entries may stay: 12 = ? + ? reveals nothing.
    assert (masks["entries"][0].as_py(), masks["visitor_entries"][0].as_py()) == (False, True)


def test_microdata_k_check_counts_groups_on_quasi_identifiers() -> None:
    table = pa.table({"gate": ["G1"] * 6 + ["G2"] * 2, "hour": [1] * 6 + [2, 3], "token": list("abcdefgh")})
    ok = check_k(table.slice(0, 6), ["gate", "hour"], 5)
    assert ok.ok and ok.groups == 1
    bad = check_k(table, ["gate", "hour"], 5)
    assert not bad.ok and (bad.groups_below_k, bad.rows_below_k, bad.smallest_group) == (2, 2, 1)
    assert "2 of 8 rows fall in 2 group(s) smaller than k=5" in bad.report()
    assert "G2" not in bad.report()  # sizes only, never values
