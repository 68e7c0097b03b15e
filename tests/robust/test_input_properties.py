"""Item 5: arbitrary input at the edge — huge integers, NaN/Inf, non-UTF-8, control characters,
enormous strings, nested JSON, wrong types — thrown at every contract's casts and at each
family's wire format (HTTP pages, MQTT payloads and topics, CSV/XLSX drops, platform rows).

Asserted every time: nothing raises but the hub's own errors; every row is either loaded or
quarantined (or dropped as a duplicate); every reason names a field (or the record/payload)
and never carries a value; the good rows of a mixed batch are all loaded.

The casts are exercised without the Great Expectations suite (a run costs ~0.1 s: fifty
examples per contract would take minutes); the suite runs in the vehicle-pass test below and
in tests/schemas.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Unreadable, records_to_raw_batch
from connectors.door_access import REQUIRED
from connectors.filedrop_read import DropFileError, read_drop_file
from connectors.intercom import metadata_only
from connectors.mqtt import identify, landed_record, route
from relay.alarms import Rejection, parse_alarm
from schemas.contract import CONTRACTS_DIR, Contract, load_contract
from schemas.validate import EXPECTATION_WORDS, QUARANTINE_CHARS, validate_batch
from tests.schemas.test_validate import GOOD

FAST = settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow])
CONTRACTS = sorted(p.stem for p in CONTRACTS_DIR.glob("*.yaml"))

# The values a source can send that hurt: each is either cast, or refused with a reason.
HOSTILE_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, -(2**63) - 1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), "NaN", "Infinity", "1e999", "-1e999"]),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cs", "Co", "Zs"]), max_size=20),
    st.sampled_from(["\ud800", "a\x00b", "x" * 70_000, "９９", "\u202e42"]),
    st.binary(max_size=20),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.datetimes(timezones=st.just(UTC)),
)
HOSTILE = st.recursive(
    HOSTILE_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)


def deeply_nested(depth: int = 5000) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _not_null_only(contract: Contract, table: pa.Table) -> tuple[pa.Array, list[Any]]:
    """The suite's not-null expectations alone (the typed table needs them to be cast)."""
    reasons: list[str | None] = [None] * table.num_rows
    for f in contract.fields:
        if not f.nullable:
            for i, value in enumerate(table.column(f.name).to_pylist()):
                reasons[i] = reasons[i] or (f"{f.name}: is missing" if value is None else None)
    return pa.array(reasons, pa.string()), []


@contextmanager
def casts_only() -> Iterator[None]:
    """validate_batch without the Great Expectations suite (casts, drift, dedup, not-null only)."""
    with mock.patch("schemas.validate.run_expectations", _not_null_only):
        yield


def values_of(records: list[Any]) -> set[str]:
    """Every text a record carries that could leak into a reason (long enough to be unmistakable)."""
    found: set[str] = set()

    def walk(v: Any, depth: int = 0) -> None:
        if depth > 50:
            return
        if isinstance(v, dict):
            for x in v.values():
                walk(x, depth + 1)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x, depth + 1)
        elif v is not None and not isinstance(v, bool):
            text = str(v)
            if len(text) >= 6 and not text.isspace():
                found.add(text[:60])

    for r in records:
        walk(r.known if isinstance(r, Unreadable) else r)
    return found


# Every reason is a field's name and one of these phrases (so no value can be in it), a
# payload's reason, or schema drift naming the unexpected fields (names, never values).
PHRASES = {
    *EXPECTATION_WORDS.values(),
    *(f"not a valid {t}" for t in ("int64", "float64", "bool", "timestamp")),
    "is not plain text or is too long",
    "is not valid UTF-8 text",
    "is not a plain value",
    "is not a JSON object",
    "not this hub's community",
}
PAYLOAD_REASONS = {"payload is not JSON", "payload is not a JSON object", "payload has no msg_id"}


def reason_is_a_template(reason: str, contract: Contract) -> bool:
    if reason in PAYLOAD_REASONS or reason.startswith("schema drift: unexpected field(s) "):
        return True
    name, _, words = reason.partition(": ")
    return name in {f.name for f in contract.fields} | {"record"} and words in PHRASES


def check_outcome(contract: Contract, records: list[Any]) -> Any:
    """Validate `records` (casts only) and assert the properties every outcome must have."""
    raw = pa.Table.from_batches([records_to_raw_batch(contract, records)])
    with casts_only():
        outcome = validate_batch(contract, raw)
    assert outcome.good.num_rows + outcome.rejected.num_rows + outcome.duplicates_dropped == len(records)
    for reason in outcome.reasons():
        assert reason_is_a_template(reason, contract), reason
    for column in outcome.rejected.columns:
        for value in column.to_pylist():
            assert not isinstance(value, str) or len(value) <= QUARANTINE_CHARS + 20
    for f in contract.fields:  # every good float is finite, every good string plain
        if f.type == "float64":
            assert all(v is None or math.isfinite(v) for v in outcome.good.column(f.name).to_pylist())
    return outcome


def hostile_records(contract: Contract) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(st.fixed_dictionaries({}, optional={f.name: HOSTILE for f in contract.fields}), max_size=6)


@FAST
@given(data=st.data(), name=st.sampled_from(CONTRACTS))
def test_the_casts_of_any_contract_survive_arbitrary_values(data: st.DataObject, name: str) -> None:
    contract = load_contract(name)
    check_outcome(contract, data.draw(hostile_records(contract)))


@pytest.mark.slow
@pytest.mark.parametrize("name", CONTRACTS)
@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_contracts_casts_survive_arbitrary_values(name: str, data: st.DataObject) -> None:
    contract = load_contract(name)
    check_outcome(contract, data.draw(hostile_records(contract)))


@FAST
@given(rows=st.lists(HOSTILE, max_size=5))
def test_an_http_page_of_anything_is_quarantined_row_by_row(rows: list[Any]) -> None:
    # A vendor page's rows as JSON gives them: objects or not, through the intercom's renaming too.
    contract = load_contract("intercom_calls")
    page = [metadata_only(r) for r in json.loads(json.dumps(rows, default=str))]
    outcome = check_outcome(contract, page)
    assert outcome.rejected.num_rows >= sum(1 for r in page if not isinstance(r, dict))


def test_absurdly_nested_json_in_a_field_is_a_reason_not_a_crash() -> None:
    contract = load_contract("vehicle_passes")
    outcome = check_outcome(contract, [{"record_id": "r1", "gate_name": deeply_nested()}])
    assert outcome.reasons() in (
        {"gate_name: is not a plain value": 1},
        {"gate_name: is not plain text or is too long": 1},
    )


TOPICS = st.one_of(
    st.text(max_size=60),
    st.builds(
        "/".join,
        st.tuples(
            st.sampled_from(["neuron", "x"]),
            st.sampled_from(["music-square", "other"]),
            st.sampled_from(["environment", "fence", "manhole", "nope"]),
            st.text(min_size=0, max_size=12),
            st.sampled_from(["telemetry", "alarm", "status", "x"]),
        ),
    ),
)
PAYLOADS = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda d: json.dumps(d, default=str).encode(), HOSTILE),
    st.builds(
        lambda d: json.dumps({"msg_id": "m1", "event_time": "2026-11-20T08:00:00+08:00", **d}, default=str).encode(),
        st.dictionaries(st.sampled_from(["pm25", "pm10", "noise_db", "location", "msg_id"]), HOSTILE, max_size=4),
    ),
    st.just(b"[" * 100_000),
)


@FAST
@given(topic=TOPICS, payload=PAYLOADS)
def test_mqtt_topics_and_payloads_land_or_are_quarantined(topic: str, payload: bytes) -> None:
    msg_id, problem = identify(topic.encode("utf-8", "surrogatepass"), payload)
    stream, topic_problem = route(topic, "neuron", "music-square")
    if topic_problem is not None:
        return  # landed under _rejects with a reason: never read as a stream's record
    record = landed_record(topic, payload, msg_id, datetime(2026, 11, 20, tzinfo=UTC), problem)
    outcome = check_outcome(load_contract(stream), [record])
    if problem == "payload is not JSON":
        assert outcome.reasons() == {"payload is not JSON": 1}


@FAST
@given(topic=TOPICS, payload=PAYLOADS)
def test_the_relay_refuses_anything_it_cannot_relay_with_a_reason(topic: str, payload: bytes) -> None:
    try:
        parse_alarm(topic, payload, "music-square", 4096, b"k" * 32)
    except Rejection as exc:
        leaks = {t for t in values_of([json.loads(payload)]) if t in exc.reason} if payload[:1] == b"{" else set()
        assert not leaks or all(t.isidentifier() for t in leaks), exc.reason  # field names may appear


DOOR_HEADER = "时间,楼栋,单元,开门方式,人员类型,结果\n"


@FAST
@given(data=st.binary(max_size=400), xlsx=st.booleans())
def test_any_bytes_dropped_either_parse_or_fail_with_a_reason(data: bytes, xlsx: bool) -> None:
    name = "drop.xlsx" if xlsx else "drop.csv"
    try:
        table = read_drop_file(name, data, REQUIRED)
    except DropFileError:
        return
    for _ in table.records():
        pass


CELL = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters='\r\n",', exclude_categories=["Cs"]), max_size=30
)


@FAST
@given(rows=st.lists(st.tuples(CELL, CELL, CELL, CELL, CELL, CELL), max_size=8))
def test_a_well_formed_drop_of_arbitrary_cells_is_quarantined_cell_by_cell(
    rows: list[tuple[str, ...]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from connectors.door_access import DoorAccess

    text = DOOR_HEADER + "".join(",".join(r) + "\n" for r in rows)
    path = tmp_path_factory.mktemp("drop") / "door.csv"
    path.write_bytes(text.encode("utf-8"))
    table = read_drop_file(path.name, path, REQUIRED)
    door = object.__new__(DoorAccess)
    door.community_id, door.contract = "music-square", load_contract("door_access")
    from zoneinfo import ZoneInfo

    door.tz = ZoneInfo("Asia/Shanghai")
    records = [door.record(row, path.name) for row in table.records()]
    check_outcome(door.contract, records)


PLATFORM_VALUES = st.one_of(
    HOSTILE_SCALARS,
    st.decimals(places=2, allow_nan=False, allow_infinity=False),
    st.binary(max_size=30),  # a BLOB column, or text the driver did not decode
)


@FAST
@given(data=st.data(), name=st.sampled_from([c for c in CONTRACTS if c.startswith("platform_")]))
def test_platform_rows_of_any_column_type_are_cast_or_quarantined(data: st.DataObject, name: str) -> None:
    contract = load_contract(name)
    rows = data.draw(
        st.lists(st.fixed_dictionaries({f.name: PLATFORM_VALUES for f in contract.fields}), min_size=1, max_size=4)
    )
    check_outcome(contract, rows)


# --- good rows next to hostile ones, with the real Great Expectations suite -------------------

GOOD_PASS: dict[str, Any] = GOOD  # the vehicle-pass record the validation tests use


@settings(deadline=None, max_examples=6, suppress_health_check=[HealthCheck.too_slow])
@given(
    bad=st.lists(
        st.tuples(st.sampled_from(sorted(GOOD_PASS)), HOSTILE.filter(lambda v: v is not None)), min_size=1, max_size=4
    )
)
def test_good_rows_beside_hostile_ones_are_all_loaded(bad: list[tuple[str, Any]]) -> None:
    contract = load_contract("vehicle_passes")
    good = [{**GOOD_PASS, "record_id": f"good{i}"} for i in range(3)]
    hostile = [{**GOOD_PASS, "record_id": f"bad{i}", name: value} for i, (name, value) in enumerate(bad)]
    raw = pa.Table.from_batches([records_to_raw_batch(contract, [*good, *hostile])])
    outcome = validate_batch(contract, raw)
    loaded = set(outcome.good.column("record_id").to_pylist())
    assert {"good0", "good1", "good2"} <= loaded
    for reason in outcome.reasons():
        assert reason_is_a_template(reason, contract), reason


def test_platform_decimals_and_bytes_are_text() -> None:
    contract = load_contract("platform_households")
    raw = records_to_raw_batch(contract, [{"area_m2": Decimal("85.25"), "household_id": b"\xff\xfe"}])
    assert raw.column("area_m2").to_pylist() == ["85.25"]
    assert raw.column("_problem").to_pylist() == ["household_id: is not valid UTF-8 text"]


def test_nothing_here_writes_files(tmp_path: Path) -> None:
    assert list(tmp_path.iterdir()) == []
