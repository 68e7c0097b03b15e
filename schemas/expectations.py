"""The contract's Great Expectations suite evaluated over Arrow columns, with GX's semantics.

A GX run costs ~100 ms of CPU whatever the batch's size (its metric graph, result objects and
stores: bench window_costs), more than a whole 100-row window may cost, and at a million rows it
converts the batch to pandas and hashes it. The suite's row-level expectations (not null, regex,
in set, between, unique) are therefore evaluated here, vectorised, as GX's pandas engine
evaluates them: nulls are never unexpected but for not-null, a regex is searched (Python `re`,
once per distinct value), bounds are inclusive, a duplicated value marks every row holding it.
GX stays the reference: `schemas.validate` builds the GX suite and validator once per process
and checks this evaluator against it (tests/schemas/test_expectations_engine.py on every
contract, and each worker process on the head of its first window of each stream).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Verdict:
    """One expectation over one batch: where it failed (a mask, True = unexpected)."""

    expectation: str
    column: str
    unexpected: pa.Array  # bool, one per row, never null

    def summary(self) -> dict[str, Any]:
        """The counts-and-names entry kept for the quality report (never a value)."""
        count = pc.sum(self.unexpected).as_py() or 0
        return {"expectation": self.expectation, "column": self.column, "success": count == 0, "unexpected": count}


def _column(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _false_where_null(mask: pa.Array) -> pa.Array:
    return pc.fill_null(mask, False)


def _regex_misses(column: pa.Array, pattern: str) -> pa.Array:
    """True where a present value has no match of `pattern` (pandas `str.contains`: `re.search`).

    Python's `re`, not RE2, so that `$` and the classes mean exactly what they mean to GX; it runs
    once per distinct value (plates, gate codes and the like repeat), mapped back with `take`.
    """
    compiled = re.compile(pattern)
    encoded = pc.dictionary_encode(column.cast(pa.string()))
    misses = pa.array(
        [v is not None and compiled.search(v) is None for v in encoded.dictionary.to_pylist()], pa.bool_()
    )
    return _false_where_null(pc.take(misses, encoded.indices))


def _duplicated(table: pa.Table, columns: list[str]) -> pa.Array:
    """True on every row whose (non-missing) key appears more than once (pandas keep=False)."""
    n = table.num_rows
    if len(columns) == 1:  # the usual case, a de-duplicated key: counting distinct values settles it
        column = _column(table, columns[0])
        if pc.count_distinct(column, mode="only_valid").as_py() == pc.count(column, mode="only_valid").as_py():
            return pa.repeat(False, n) if n else pa.array([], pa.bool_())
    keys = table.select(columns)
    all_missing = pa.repeat(True, n) if n else pa.array([], pa.bool_())
    for name in columns:
        all_missing = pc.and_(all_missing, pc.is_null(_column(keys, name)))
    counted = keys.append_column("_pos", pa.array(range(n), pa.int64()))
    groups = counted.group_by(columns, use_threads=False).aggregate([("_pos", "count")])
    if groups.num_rows == n:  # the usual case after de-duplication: every key once
        return pa.repeat(False, n) if n else pa.array([], pa.bool_())
    repeated = groups.filter(pc.greater(groups.column("_pos_count"), 1)).select(columns)
    marked = counted.join(repeated.append_column("_dup", pa.repeat(True, repeated.num_rows)), columns)
    mask = pc.fill_null(
        pc.take(marked.column("_dup"), pc.array_sort_indices(marked.column("_pos"))).combine_chunks(), False
    )
    return pc.and_(mask, pc.invert(all_missing))


def _comparable(column: pa.Array, *bounds: float | None) -> pa.Array:
    """An integer column against integral bounds stays integer (exact for every int64; Arrow would
    refuse to make 2**63 - 1 a double); against a fractional bound it is compared as doubles,
    as pandas compares it."""
    if pa.types.is_integer(column.type) and any(b is not None and not float(b).is_integer() for b in bounds):
        return column.cast(pa.float64(), safe=False)
    return column


def _bound(column: pa.Array, bound: float | None) -> Any:
    if bound is not None and pa.types.is_integer(column.type):
        return int(bound) if float(bound).is_integer() else bound
    return bound


def in_gx_order(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The suite in the order GX validates and reports it: grouped by column, each column where it
    first appears, the expectations without one (compound keys) as one more group (GX's
    `Validator.process_expectations_for_validation`). The first failing one names a row's reason."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        column = spec.get("column")
        groups.setdefault(column if isinstance(column, str) else "\x00no column", []).append(spec)
    return [spec for group in groups.values() for spec in group]


def evaluate(spec: dict[str, Any], table: pa.Table) -> Verdict:
    """One expectation (a contract's `expectations()` entry) over the table's rows."""
    kind = spec["type"]
    if kind == "expect_compound_columns_to_be_unique":
        return Verdict(kind, ",".join(spec["column_list"]), _duplicated(table, list(spec["column_list"])))
    name = spec["column"]
    column = _column(table, name)
    if kind == "expect_column_values_to_not_be_null":
        mask = pc.is_null(column, nan_is_null=True)
    elif kind == "expect_column_values_to_match_regex":
        mask = _regex_misses(column, spec["regex"])
    elif kind == "expect_column_values_to_be_in_set":
        allowed = pa.array(spec["value_set"], column.type)
        mask = pc.and_(pc.is_valid(column), pc.invert(pc.is_in(column, value_set=allowed)))
    elif kind == "expect_column_values_to_be_between":
        low, high = spec.get("min_value"), spec.get("max_value")
        column = _comparable(column, low, high)
        low, high = _bound(column, low), _bound(column, high)
        below = pc.less(column, low) if low is not None else pa.repeat(False, len(column))
        above = pc.greater(column, high) if high is not None else pa.repeat(False, len(column))
        mask = _false_where_null(pc.or_(below, above))
    elif kind == "expect_column_values_to_be_unique":
        mask = _duplicated(table, [name])
    else:  # a contract may name only what this evaluator knows (tests hold every contract to it)
        raise ValueError(f"expectation {kind!r} has no Arrow evaluation")
    return Verdict(kind, name, mask)
