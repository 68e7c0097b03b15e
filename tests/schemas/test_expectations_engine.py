"""The Arrow evaluation of a contract's suite gives what Great Expectations gives: the same reason
on every row and the same summary, in GX's order, on rows built to sit on each rule's edges."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from schemas.contract import CONTRACTS_DIR, Contract, load_contract
from schemas.expectations import evaluate
from schemas.validate import _arrow_expectations, run_expectations, run_gx_expectations
from tests.schemas.test_validate import GOOD


def typed(contract: Contract, rows: list[dict[str, Any]]) -> pa.Table:
    schema = pa.schema([pa.field(f.name, f.arrow_type) for f in contract.fields])
    return pa.Table.from_pylist(rows, schema=schema)


def edges() -> list[dict[str, Any]]:
    """Vehicle passes on the edges of each expectation: nulls, a trailing newline (Python's `$`
    matches before it, RE2's would not), bounds exactly met and just missed, a duplicated key."""
    from datetime import UTC, datetime

    base = {**GOOD, "pass_time": datetime(2026, 11, 20, tzinfo=UTC), "updated_at": datetime(2026, 11, 20, tzinfo=UTC)}
    changes: list[dict[str, Any]] = [
        {},
        {"gate_code": "G1\n"},
        {"gate_code": "g1"},
        {"gate_code": None},
        {"plate_no": "沪AO1234"},
        {"plate_no": None, "direction": "IN"},
        {"direction": "up", "plate_color": "red"},
        {"fee_fen": 0},
        {"fee_fen": 1_000_000},
        {"fee_fen": 1_000_001},
        {"fee_fen": -1},
        {"vehicle_type": None, "fee_fen": None},
        {"record_id": None},
        {"record_id": None},
    ]
    rows = [{**base, "record_id": f"r{i}", **change} for i, change in enumerate(changes)]
    rows.append({**base, "record_id": "r1"})  # r1 twice: both rows are unexpected for uniqueness
    return rows


def test_vehicle_pass_edges_agree_with_great_expectations() -> None:
    contract = load_contract("vehicle_passes")
    table = typed(contract, edges())
    gx_reasons, gx_summary = run_gx_expectations(contract, table)
    reasons, summary = _arrow_expectations(contract, table)
    assert reasons.to_pylist() == gx_reasons
    assert summary == gx_summary
    assert any(not s["success"] for s in summary if s["expectation"] == "expect_column_values_to_be_unique")


def test_a_compound_key_agrees_with_great_expectations() -> None:
    contract = load_contract("platform_consent")
    assert len(contract.primary_key) > 1
    schema = pa.schema([pa.field(f.name, f.arrow_type) for f in contract.fields])
    first = {f.name: None for f in contract.fields}
    key = contract.primary_key
    rows = [
        {**first, **{k: "a" for k in key}},
        {**first, **{k: "a" for k in key}},  # the same key twice
        {**first, key[0]: "a", **{k: "b" for k in key[1:]}},
        dict(first),  # every key value missing: ignored, as GX ignores it
    ]
    table = pa.Table.from_pylist(rows, schema=schema)
    gx_reasons, gx_summary = run_gx_expectations(contract, table)
    reasons, summary = _arrow_expectations(contract, table)
    assert reasons.to_pylist() == gx_reasons
    assert summary == gx_summary


@pytest.mark.parametrize("name", sorted(p.stem for p in CONTRACTS_DIR.glob("*.yaml")))
def test_every_contract_expectation_has_an_arrow_evaluation(name: str) -> None:
    contract = load_contract(name)
    schema = pa.schema([pa.field(f.name, f.arrow_type) for f in contract.fields])
    table = pa.Table.from_arrays([pa.nulls(2, f.type) for f in schema], schema=schema)
    for spec in contract.expectations():
        assert len(evaluate(spec, table).unexpected) == 2


def test_a_disagreement_makes_the_process_use_gx(monkeypatch: pytest.MonkeyPatch) -> None:
    import schemas.validate as validate

    contract = load_contract("vehicle_passes")
    table = typed(contract, edges())
    monkeypatch.setattr(validate, "_CHECKED", {})
    wrong = pa.array(["plate_no: is missing"] * table.num_rows, pa.string())
    monkeypatch.setattr(validate, "_arrow_expectations", lambda c, t: (wrong[: t.num_rows], []))
    reasons, _ = run_expectations(contract, table)
    assert reasons.to_pylist() == run_gx_expectations(contract, table)[0]
    assert validate._CHECKED[(contract.name, contract.version)] is False
