"""Validate a raw batch against its contract: cast, de-duplicate, Great Expectations.

Rows that cannot be cast or fail an expectation are split off with a reason; the rest
come back typed in the contract's schema. Reasons name the field and the rule, never the
value (a reason is shown to admins and written to logs; the value may be a plate).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from schemas.contract import EXTRA_COLUMN, PROBLEM_COLUMN, Contract, ContractField
from schemas.expectations import evaluate, in_gx_order

log = logging.getLogger(__name__)

REASON_COLUMN = "_reason"

# What a failed expectation means, in words an admin reads in the quality report.
EXPECTATION_WORDS = {
    "expect_column_values_to_not_be_null": "is missing",
    "expect_column_values_to_match_regex": "does not match the contract's pattern",
    "expect_column_values_to_be_in_set": "is not one of the allowed values",
    "expect_column_values_to_be_between": "is out of range",
    "expect_column_values_to_be_unique": "is not unique",
    "expect_compound_columns_to_be_unique": "is not unique",
}


@dataclass
class ValidationOutcome:
    """The typed good rows, the rejected raw rows with reasons, and what was checked."""

    good: pa.Table
    rejected: pa.Table  # raw text columns + _reason
    duplicates_dropped: int
    expectations: list[dict[str, Any]] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)

    def reasons(self) -> dict[str, int]:
        """How many rows were rejected, per reason."""
        if self.rejected.num_rows == 0:
            return {}
        return dict(Counter(self.rejected.column(REASON_COLUMN).to_pylist()))


_NUMBER_PATTERNS = {"int64": r"^-?[0-9]+$", "float64": r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$"}
_OFFSET = re.compile(r"(Z|[+-][0-9]{2}:?[0-9]{2})$")


def _cast_value(value: str, f: ContractField) -> Any:
    if f.type == "timestamp":
        if not _OFFSET.search(value):
            raise ValueError("no UTC offset")
        return datetime.fromisoformat(value)
    if f.type == "bool":
        return {"true": True, "false": False, "1": True, "0": False}[value.lower()]
    if f.type in _NUMBER_PATTERNS and not re.match(_NUMBER_PATTERNS[f.type], value):
        raise ValueError("not a number")
    return int(value) if f.type == "int64" else float(value)


_INT64_SAFE_DIGITS = 18  # every number of at most 18 digits fits in an int64


def _int64_in_range(raw: pa.Array, numeric: pa.Array) -> pa.Array:
    """True where a digits-only value fits in an int64 (the mask is only read where `numeric`)."""
    digits = pc.utf8_length(pc.utf8_ltrim(pc.fill_null(raw, ""), characters="-"))
    long = pc.fill_null(pc.and_(numeric, pc.greater(digits, _INT64_SAFE_DIGITS)), False)
    if not pc.any(long).as_py():
        return pa.repeat(True, len(raw))
    fits = [True] * len(raw)
    for i in pc.indices_nonzero(long).to_pylist():
        fits[i] = -(2**63) <= int(raw[i].as_py()) < 2**63
    return pa.array(fits, pa.bool_())


# ISO 8601 with a UTC offset and fields in range, as sources send it; Arrow's cast parses these
# (fractions included). What it still refuses (a 30th of February) is found by halving.
_ISO_WITH_OFFSET = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:?[0-9]{2})$"
)


def _iso_timestamps(raw: pa.Array, arrow_type: pa.DataType) -> pa.Array:
    """A column that did not cast whole: Arrow parses the values shaped like ISO 8601 with an
    offset (one bad value no longer sends every other one through Python); null elsewhere."""
    shaped = pc.fill_null(pc.match_substring_regex(raw, _ISO_WITH_OFFSET), False)
    return _cast_where_it_parses(pc.if_else(shaped, raw, pa.scalar(None, pa.string())), arrow_type)


def _cast_where_it_parses(values: pa.Array, arrow_type: pa.DataType) -> pa.Array:
    """Arrow's cast, with null for each value it refuses (halving around them: rare here)."""
    try:
        return values.cast(arrow_type)
    except pa.ArrowInvalid:
        if len(values) == 1:
            return pa.nulls(1, arrow_type)
        half = len(values) // 2
        return pa.concat_arrays(
            [
                _cast_where_it_parses(values.slice(0, half), arrow_type),
                _cast_where_it_parses(values.slice(half), arrow_type),
            ]
        )


def cast_column(raw: pa.Array, f: ContractField) -> tuple[pa.Array, pa.Array]:
    """Cast one text column to its contract type; returns (values, failed-mask).

    Vectorised for the common case; only values Arrow cannot parse are looked at one by
    one, so a single bad timestamp does not slow the whole batch down.
    """
    if f.type == "string":
        return raw, pa.repeat(False, len(raw))
    present = pc.is_valid(raw)
    if f.type in _NUMBER_PATTERNS:
        numeric = pc.fill_null(pc.match_substring_regex(raw, _NUMBER_PATTERNS[f.type]), False)
        if f.type == "int64":
            # Digits alone do not make an int64: 2**63 matches the pattern and would make the
            # cast raise (with the value in its message) for the whole batch. A value is
            # range-checked by length first; the rare long one is checked exactly.
            numeric = pc.and_(numeric, _int64_in_range(raw, numeric))
        values = pc.if_else(numeric, raw, pa.scalar(None, pa.string())).cast(f.arrow_type)
        if f.type == "float64":
            # "1e999" is a well-formed number that parses as infinity: not a reading.
            finite = pc.fill_null(pc.is_finite(values), False)
            numeric = pc.and_(numeric, finite)
            values = pc.if_else(finite, values, pa.scalar(None, pa.float64()))
        return values, pc.and_(present, pc.invert(numeric))
    if f.type == "timestamp":
        try:
            return raw.cast(f.arrow_type), pa.repeat(False, len(raw))
        except pa.ArrowInvalid:
            values = _iso_timestamps(raw, f.arrow_type)
    else:
        values = pa.nulls(len(raw), f.arrow_type)
    # The rest (booleans, garbage) one by one; only they become Python objects.
    unparsed = pc.and_(present, pc.is_null(values))
    leftover = pc.indices_nonzero(unparsed).to_pylist()
    if not leftover:
        return values, pa.repeat(False, len(raw))
    parsed: list[Any] = []
    failed_at: list[int] = []
    for i, text in zip(leftover, raw.take(pa.array(leftover, pa.int64())).to_pylist(), strict=True):
        try:
            parsed.append(_cast_value(text, f))
        except (ValueError, KeyError, OverflowError):
            parsed.append(None)
            failed_at.append(i)
    values = pc.replace_with_mask(values, unparsed, pa.array(parsed, type=f.arrow_type))
    failed = pc.is_in(pa.array(range(len(raw)), pa.int64()), value_set=pa.array(failed_at, pa.int64()))
    return values, failed


_VALIDATIONS: dict[tuple[str, int], Any] = {}


def _gx_validation(contract: Contract) -> Any:
    """The contract's GX validation definition, built once per process."""
    key = (contract.name, contract.version)
    if key not in _VALIDATIONS:
        _VALIDATIONS[key] = _build_gx_validation(contract)
    return _VALIDATIONS[key]


def warm_up(*streams: str) -> None:
    """Pay the per-process costs of validating these streams now (GX's import, context, suites)."""
    from schemas.contract import load_contract

    for name in streams:
        _gx_validation(load_contract(name))


def _build_gx_validation(contract: Contract) -> Any:
    # GX costs ~5 s to import: only the task that validates pays it (NOTES.md).
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = context.data_sources.add_pandas("hub").add_dataframe_asset(contract.name)
    definition = batch.add_batch_definition_whole_dataframe("window")
    suite = context.suites.add(gx.ExpectationSuite(name=f"{contract.name}.v{contract.version}"))
    for spec in contract.expectations():
        kwargs = {k: v for k, v in spec.items() if k != "type"}
        cls = getattr(gxe, "".join(part.title() for part in spec["type"].split("_")))
        suite.add_expectation(cls(**kwargs))
    return context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{contract.name}.validation", data=definition, suite=suite)
    )


def run_gx_expectations(contract: Contract, table: pa.Table) -> tuple[list[str | None], list[dict[str, Any]]]:
    """Run the contract's GX suite (the validator built once per process); returns a reason per
    row (None = passed) and a summary. The reference `run_expectations` is checked against."""
    reasons: list[str | None] = [None] * table.num_rows
    if table.num_rows == 0:
        return reasons, []
    frame = table.to_pandas(types_mapper=None)
    result = _gx_validation(contract).run(
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "COMPLETE", "return_unexpected_index_query": False},
    )
    summary = []
    for r in result.results:
        cfg = r.expectation_config
        column = cfg.kwargs.get("column") or ",".join(cfg.kwargs.get("column_list", []))
        unexpected = r.result.get("unexpected_index_list") or []
        # Only counts and names leave this function: GX's result also lists the values.
        summary.append(
            {
                "expectation": cfg.type,
                "column": column,
                "success": bool(r.success),
                "unexpected": len(unexpected),
            }
        )
        for index in unexpected:
            if reasons[index] is None:
                reasons[index] = f"{column}: {EXPECTATION_WORDS.get(cfg.type, cfg.type)}"
    return reasons, summary


# How many rows of a process's first window of a stream GX validates beside the Arrow evaluator.
CROSS_CHECK_ROWS = 1_000
_CHECKED: dict[tuple[str, int], bool] = {}  # (stream, version) -> the evaluator agreed with GX


def run_expectations(contract: Contract, table: pa.Table) -> tuple[pa.Array, list[dict[str, Any]]]:
    """The contract's suite over the table, vectorised (schemas.expectations); returns a reason
    per row (null = passed) and a summary per expectation (counts and names, never values).

    The first batch of each stream a process validates is also run through the GX validator
    (its head, CROSS_CHECK_ROWS rows); should they ever disagree, the process uses GX for that
    stream from then on and says so in the log."""
    key = (contract.name, contract.version)
    if table.num_rows and key not in _CHECKED:
        _CHECKED[key] = _agrees_with_gx(contract, table.slice(0, CROSS_CHECK_ROWS))
    if not _CHECKED.get(key, True):
        reasons, summary = run_gx_expectations(contract, table)
        return pa.array(reasons, pa.string()), summary
    return _arrow_expectations(contract, table)


def _arrow_expectations(contract: Contract, table: pa.Table) -> tuple[pa.Array, list[dict[str, Any]]]:
    reasons = pa.nulls(table.num_rows, pa.string())
    if table.num_rows == 0:
        return reasons, []
    summary = []
    for spec in in_gx_order(contract.expectations()):
        verdict = evaluate(spec, table)
        summary.append(verdict.summary())
        if not summary[-1]["success"]:
            words = f"{verdict.column}: {EXPECTATION_WORDS.get(verdict.expectation, verdict.expectation)}"
            reasons = _first_reason(reasons, verdict.unexpected, words)
    return reasons, summary


def _agrees_with_gx(contract: Contract, head: pa.Table) -> bool:
    gx_reasons, gx_summary = run_gx_expectations(contract, head)
    reasons, summary = _arrow_expectations(contract, head)
    if reasons.to_pylist() == gx_reasons and summary == gx_summary:
        return True
    differing = sorted({a["expectation"] for a, b in zip(summary, gx_summary, strict=False) if a != b})
    log.error(
        "%s: the Arrow evaluation of the suite disagrees with Great Expectations (%s); this process "
        "validates the stream with GX",
        contract.name,
        ", ".join(differing) or "row reasons",
    )
    return False


def _first_reason(reasons: pa.Array, mask: pa.Array, text: str | pa.Array) -> pa.Array:
    """`reasons` with `text` where `mask` holds and no earlier reason is set (the first one wins)."""
    mask = pc.fill_null(mask, False)
    if not pc.any(mask).as_py():
        return reasons
    new = pc.if_else(mask, text if isinstance(text, pa.Array) else pa.scalar(text, pa.string()), None)
    return pc.coalesce(reasons, new)


COMMUNITY_FIELD = "community_id"


def validate_batch(contract: Contract, raw: pa.Table, community_id: str | None = None) -> ValidationOutcome:
    """Split a raw batch into typed good rows and rejected rows with reasons.

    With `community_id`, a row that names another community is rejected: source values
    become lake paths and partition keys, and only this hub's community may (issue 16).

    Every step is a column operation: the first reason of each row is kept in an Arrow
    column, so a million-row window costs no Python per row."""
    n = raw.num_rows
    reasons = (
        _column(raw, PROBLEM_COLUMN).cast(pa.string())
        if PROBLEM_COLUMN in raw.column_names
        else pa.nulls(n, pa.string())
    )
    extra = _column(raw, EXTRA_COLUMN)
    named = pc.fill_null(pc.greater(pc.utf8_length(extra), 0), False)
    drift = sorted(pc.unique(extra.filter(named)).to_pylist()) if pc.any(named).as_py() else []
    if contract.evolution == "freeze" and drift:
        text = pc.binary_join_element_wise(pa.scalar("schema drift: unexpected field(s) "), extra, "")
        reasons = _first_reason(reasons, named, text)
    typed_columns = []
    for f in contract.fields:
        column = _column(raw, f.name)
        reasons = _first_reason(reasons, _unfit_text(column), f"{f.name}: is not plain text or is too long")
        values, failed = cast_column(column, f)
        reasons = _first_reason(reasons, failed, f"{f.name}: not a valid {f.type}")
        typed_columns.append(values)
    typed = pa.Table.from_arrays(typed_columns, schema=_nullable(contract))
    if community_id is not None and COMMUNITY_FIELD in typed.column_names:
        foreign = pc.fill_null(pc.not_equal(typed.column(COMMUNITY_FIELD), community_id), True)
        reasons = _first_reason(reasons, foreign, f"{COMMUNITY_FIELD}: not this hub's community")
    castable = pc.is_null(reasons)
    candidates = typed.filter(castable)
    candidate_index = pc.indices_nonzero(castable)

    deduped, kept_positions = _deduplicate(contract, candidates)
    duplicates = candidates.num_rows - deduped.num_rows
    kept = pc.take(candidate_index, kept_positions)  # raw positions of the de-duplicated rows, ascending
    is_kept = pc.is_in(pa.array(range(n), pa.uint64()), value_set=kept.cast(pa.uint64())) if n else castable

    row_reasons, summary = run_expectations(contract, deduped)
    good = deduped.filter(pc.is_null(row_reasons)) if deduped.num_rows else deduped
    if deduped.num_rows:
        reasons = pc.coalesce(reasons, pc.replace_with_mask(pa.nulls(n, pa.string()), is_kept, row_reasons))

    # Rows de-duplication dropped are neither good nor quarantined: a later version of each was kept.
    dropped = pc.and_(castable, pc.invert(is_kept))
    rejected_mask = pc.and_(pc.is_valid(reasons), pc.invert(dropped))
    rejected = _quarantine_copy(raw.filter(rejected_mask)).append_column(REASON_COLUMN, reasons.filter(rejected_mask))
    return ValidationOutcome(good.cast(contract.arrow_schema()), rejected, duplicates, summary, drift)


def _column(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name)
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


# A value longer than this is no reading, name or note any source sends: it is refused, and a
# refused value is kept in quarantine only up to QUARANTINE_CHARS (an admin needs its start to
# see what went wrong, never a megabyte of it).
MAX_TEXT_CHARS = 65_536
QUARANTINE_CHARS = 256
# C0 control characters other than tab, line feed and carriage return: no source has a reason
# to send them, and they corrupt what reads the data later (terminals, CSV, logs).
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


def _unfit_text(column: pa.Array) -> pa.Array:
    """True where a present value is too long or holds control characters."""
    long = pc.greater(pc.utf8_length(column), MAX_TEXT_CHARS)
    control = pc.match_substring_regex(column, _CONTROL)
    return pc.fill_null(pc.or_(long, control), False)


def _quarantine_copy(rejected: pa.Table) -> pa.Table:
    """The rejected raw rows with every value cut to QUARANTINE_CHARS."""
    columns = []
    for column in rejected.columns:
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        if pa.types.is_string(column.type):
            long = pc.fill_null(pc.greater(pc.utf8_length(column), QUARANTINE_CHARS), False)
            if pc.any(long).as_py():
                cut = pc.binary_join_element_wise(
                    pc.utf8_slice_codeunits(column, 0, QUARANTINE_CHARS), pa.scalar("…[truncated]"), ""
                )
                column = pc.if_else(long, cut, column)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=rejected.column_names)


def _nullable(contract: Contract) -> pa.Schema:
    # Cast failures become nulls before they are split off, so every column is nullable here.
    return pa.schema([pa.field(f.name, f.arrow_type) for f in contract.fields])


def _deduplicate(contract: Contract, table: pa.Table) -> tuple[pa.Table, pa.Array]:
    """Keep one row per primary key, the last updated (sources resend records); vectorised.
    Returns the kept rows and their positions in `table`, ascending."""
    if table.num_rows == 0:
        return table, pa.array([], pa.int64())
    indexed = table.select([*contract.primary_key, contract.cursor_field]).append_column(
        "_pos", pa.array(range(table.num_rows), type=pa.int64())
    )
    ordered = indexed.sort_by([(contract.cursor_field, "descending"), ("_pos", "ascending")]).append_column(
        "_rank", pa.array(range(table.num_rows), type=pa.int64())
    )
    first = ordered.group_by(contract.primary_key, use_threads=False).aggregate([("_rank", "min")])
    keep = pc.take(ordered.column("_pos"), first.column("_rank_min")).combine_chunks()
    positions = pc.take(keep, pc.array_sort_indices(keep))
    return table.take(positions), positions
