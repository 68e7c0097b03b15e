"""k-anonymity: small-cell suppression with complementary suppression for aggregate feeds,
and the k-check on quasi-identifiers that blocks a microdata publish.

Aggregates: a count between 1 and k-1 is suppressed (published as null). Zero is published:
that nobody passed says nothing about anyone. Where counts are tied by a published total
(entries = resident + visitor, a row or column total), one suppressed cell could be
recomputed from the others, so more cells are suppressed until, in every relation, none
is alone and the suppressed parts add up to at least k (an attacker cannot even bound
them below k). Cells tied by several relations at once are finally audited by linear
programming: each suppressed cell must have a range of feasible values wider than one
value, whose top is at least k; if not, one more cell goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

# (total cell, part cells): values[total] == sum(values[part] for part in parts)
Relation = tuple[int, Sequence[int]]


@dataclass(frozen=True)
class Suppression:
    """What small-cell suppression did to one table (counts only, never values)."""

    cells: int
    primary: int
    complementary: int


def _pick(candidates: list[int], values: Sequence[int]) -> int:
    # The smallest non-zero count costs the least information; a zero only when nothing else is left.
    return min(candidates, key=lambda i: (values[i] == 0, values[i], i))


def _close_relations(values: Sequence[int], relations: Sequence[Relation], hidden: set[int], k: int) -> None:
    changed = True
    while changed:
        changed = False
        for total, parts in relations:
            cells = [total, *parts]
            suppressed = [c for c in cells if c in hidden]
            if len(suppressed) == 1:
                hidden.add(_pick([c for c in cells if c not in hidden], values))
                changed = True
            elif suppressed and total not in hidden:
                residual = sum(values[p] for p in parts if p in hidden)
                if 0 < residual < k:
                    hidden.add(total)
                    changed = True


def feasible_range(
    values: Sequence[int], relations: Sequence[Relation], hidden: set[int], cell: int
) -> tuple[float, float]:
    """The least and greatest value `cell` can take given every published count (∞ if unbounded)."""
    from scipy.optimize import linprog

    unknown = sorted(hidden)
    column = {c: j for j, c in enumerate(unknown)}
    rows, rhs = [], []
    for total, parts in relations:
        cells = [(total, 1.0), *((p, -1.0) for p in parts)]
        if not any(c in hidden for c, _ in cells):
            continue
        row = [0.0] * len(unknown)
        known = 0.0
        for c, sign in cells:
            if c in hidden:
                row[column[c]] += sign
            else:
                known += sign * values[c]
        rows.append(row)
        rhs.append(-known)
    objective = [0.0] * len(unknown)
    objective[column[cell]] = 1.0
    bounds = [(0, None)] * len(unknown)
    low = linprog(objective, A_eq=rows or None, b_eq=rhs or None, bounds=bounds)
    high = linprog([-x for x in objective], A_eq=rows or None, b_eq=rhs or None, bounds=bounds)
    lowest = low.fun if low.status == 0 else 0.0
    highest = -high.fun if high.status == 0 else float("inf")
    return lowest, highest


def protect_cells(
    values: Sequence[int], relations: Sequence[Relation], k: int, hidden: set[int] | None = None
) -> set[int]:
    """The cells to suppress: primary (1 … k-1), then complementary. `hidden` are cells the
    consumer never sees anyway (not granted), which count as suppressed."""
    hidden = set(hidden or ()) | {i for i, v in enumerate(values) if 0 < v < k}
    _close_relations(values, relations, hidden, k)
    membership: dict[int, int] = {}
    for total, parts in relations:
        for c in (total, *parts):
            membership[c] = membership.get(c, 0) + 1
    if all(n < 2 for n in membership.values()):
        return hidden  # relations share no cell: the rules above are exact
    for _ in range(len(values)):
        weak = next((c for c in sorted(hidden) if _exposed(values, relations, hidden, c, k)), None)
        if weak is None:
            return hidden
        around = [c for t, ps in relations if weak in (t, *ps) for c in (t, *ps) if c not in hidden]
        if not around:
            # Its own relations are all hidden: the bound comes from further away, through a
            # published total of other suppressed cells; hide the cheapest cell next to any of them.
            around = [c for t, ps in relations if hidden & {t, *ps} for c in (t, *ps) if c not in hidden]
        if not around:
            return hidden
        hidden.add(_pick(around, values))
        _close_relations(values, relations, hidden, k)
    return hidden


def _exposed(values: Sequence[int], relations: Sequence[Relation], hidden: set[int], cell: int, k: int) -> bool:
    if not any(cell in (t, *ps) for t, ps in relations):
        return False
    low, high = feasible_range(values, relations, hidden, cell)
    return high - low < 0.5 or high < k


def suppression_masks(
    rows: pa.Table, granted: list[str], totals: Sequence[tuple[str, Sequence[str]]], k: int
) -> tuple[dict[str, pa.Array], Suppression]:
    """Which cells of each granted count column to suppress, row by row.

    `rows` hold every count the relations name (the mart's rows); a count the consumer is
    not granted is never seen by it, so it counts as suppressed from the start.
    """
    names = list(dict.fromkeys([*granted, *(c for t, ps in totals for c in (t, *ps))]))
    width, n = len(names), rows.num_rows
    columns = {name: rows.column(name).to_pylist() for name in names}
    values = [columns[name][row] or 0 for row in range(n) for name in names]
    unseen = {
        row * width + j
        for row in range(n)
        for j, name in enumerate(names)
        if name not in granted or columns[name][row] is None
    }
    index = {name: j for j, name in enumerate(names)}
    relations: list[Relation] = [
        (row * width + index[t], [row * width + index[p] for p in ps]) for row in range(n) for t, ps in totals
    ]
    suppressed = protect_cells(values, relations, k, unseen) - unseen
    masks = {
        name: pa.array([row * width + index[name] in suppressed for row in range(n)], pa.bool_()) for name in granted
    }
    primary = sum(1 for i, v in enumerate(values) if 0 < v < k and i not in unseen)
    return masks, Suppression(len(granted) * n, primary, len(suppressed) - primary)


@dataclass(frozen=True)
class KCheck:
    """The outcome of a k-check on microdata (sizes only, never values)."""

    k: int
    quasi_identifiers: list[str]
    rows: int
    groups: int
    groups_below_k: int
    rows_below_k: int
    smallest_group: int

    @property
    def ok(self) -> bool:
        return self.groups_below_k == 0

    def report(self) -> str:
        """A readable account of a violation."""
        return (
            f"{self.rows_below_k} of {self.rows} rows fall in {self.groups_below_k} group(s) smaller than "
            f"k={self.k} (smallest: {self.smallest_group}) on the quasi-identifiers "
            f"{', '.join(self.quasi_identifiers)}; generalise them further or drop one"
        )


def check_k(table: pa.Table, quasi: list[str], k: int) -> KCheck:
    """Whether every combination of quasi-identifier values is shared by at least k rows."""
    if table.num_rows == 0 or not quasi:
        return KCheck(k, quasi, table.num_rows, 1 if table.num_rows else 0, 0, 0, table.num_rows)
    groups = table.select(quasi).group_by(quasi, use_threads=False).aggregate([([], "count_all")])
    sizes = groups.column("count_all")
    small = pc.filter(sizes, pc.less(sizes, k))
    return KCheck(
        k=k,
        quasi_identifiers=quasi,
        rows=table.num_rows,
        groups=groups.num_rows,
        groups_below_k=len(small),
        rows_below_k=int(pc.sum(small).as_py() or 0),
        smallest_group=int(pc.min(sizes).as_py()),
    )
