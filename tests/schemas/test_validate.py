"""Validation against the vehicle-pass contract: each fault ends with its reason, good rows typed."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from connectors.base import records_to_raw_batch
from schemas.contract import PrivacyClass, load_contract
from schemas.validate import validate_batch

CONTRACT = load_contract("vehicle_passes")
GOOD: dict[str, Any] = {
    "record_id": "r1",
    "park_code": "MSQ",
    "community_id": "music-square",
    "gate_code": "G1",
    "gate_name": "北门",
    "direction": "in",
    "plate_no": "沪A12345",
    "plate_color": "blue",
    "vehicle_type": "resident",
    "pass_time": "2026-11-20T08:15:03+08:00",
    "updated_at": "2026-11-20T08:15:04+08:00",
    "fee_fen": None,
}


def validate(*records: dict[str, Any]) -> Any:
    return validate_batch(CONTRACT, pa.Table.from_batches([records_to_raw_batch(CONTRACT, records)]))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"plate_no": "沪A-1234"}, "plate_no: does not match the contract's pattern"),  # dash, too short
        ({"plate_no": "沪AO1234"}, "plate_no: does not match the contract's pattern"),  # letter O
        ({"plate_no": None}, "plate_no: is missing"),
        ({"direction": "x"}, "direction: is not one of the allowed values"),
        ({"pass_time": "2026-11-20 25:61:00"}, "pass_time: not a valid timestamp"),
        ({"pass_time": "2026-11-20T08:15:03"}, "pass_time: not a valid timestamp"),  # no offset: ambiguous
        ({"fee_fen": "12.5"}, "fee_fen: not a valid int64"),
        ({"fee_fen": -1}, "fee_fen: is out of range"),
        ({"gate_code": "north"}, "gate_code: does not match the contract's pattern"),
        ({"surprise": 1}, "schema drift: unexpected field(s) surprise"),  # the contract is frozen
    ],
)
def test_each_fault_is_quarantined_with_its_reason(change: dict[str, Any], reason: str) -> None:
    outcome = validate(GOOD, {**GOOD, "record_id": "bad", **change})
    assert outcome.good.column("record_id").to_pylist() == ["r1"]
    assert outcome.reasons() == {reason: 1}
    assert outcome.rejected.column("record_id").to_pylist() == ["bad"]


def test_reasons_never_carry_the_value() -> None:
    outcome = validate({**GOOD, "plate_no": "沪A-9999"}, {**GOOD, "record_id": "2", "pass_time": "沪B77777"})
    assert not any("9999" in r or "77777" in r for r in outcome.reasons())


def test_good_rows_are_typed_and_duplicates_collapse_to_the_latest_update() -> None:
    newer = {**GOOD, "fee_fen": 500, "updated_at": "2026-11-20T09:00:00+08:00"}
    outcome = validate(GOOD, newer, GOOD)
    assert outcome.good.num_rows == 1
    assert outcome.duplicates_dropped == 2
    assert outcome.good.column("fee_fen").to_pylist() == [500]
    assert outcome.good.schema == CONTRACT.arrow_schema()
    assert str(outcome.good.column("pass_time")[0].as_py()) == "2026-11-20 00:15:03+00:00"


def test_an_evolving_contract_accepts_and_reports_new_fields() -> None:
    evolving = CONTRACT.model_copy(update={"evolution": "evolve"})
    raw = pa.Table.from_batches([records_to_raw_batch(evolving, [{**GOOD, "lane": 2}])])
    outcome = validate_batch(evolving, raw)
    assert outcome.good.num_rows == 1
    assert outcome.drift == ["lane"]


def test_the_contract_declares_the_plate_direct_and_derives_the_suite() -> None:
    assert CONTRACT.field("plate_no").privacy is PrivacyClass.DIRECT
    assert "plate_no_token" in CONTRACT.staging_schema().names
    assert "plate_no" not in CONTRACT.staging_schema().names
    kinds = {(e["type"], e.get("column")) for e in CONTRACT.expectations()}
    assert ("expect_column_values_to_match_regex", "plate_no") in kinds
    assert ("expect_column_values_to_be_unique", "record_id") in kinds


@pytest.mark.parametrize("fee", [2**63, -(2**63) - 1, 10**40, "9" * 4000])
def test_an_integer_beyond_int64_is_quarantined_without_its_value(fee: Any) -> None:
    # D1: 2**63 used to crash the whole window with the value in the error.
    outcome = validate(GOOD, {**GOOD, "record_id": "big", "fee_fen": fee})
    assert outcome.good.column("record_id").to_pylist() == ["r1"]
    assert outcome.reasons() == {"fee_fen: not a valid int64": 1}


def test_int64_bounds_are_exact() -> None:
    # 2**63 - 1 fits (then fails the contract's range); leading zeros are not a big number.
    padded = "000000000000000000000012"
    outcome = validate({**GOOD, "fee_fen": 2**63 - 1}, {**GOOD, "record_id": "r2", "fee_fen": padded})
    assert outcome.good.column("fee_fen").to_pylist() == [12]
    assert outcome.reasons() == {"fee_fen: is out of range": 1}
