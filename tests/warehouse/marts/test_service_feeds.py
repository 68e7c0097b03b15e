"""The WeChat-platform and door-access feeds: each mart built in a real DuckDB from a small,
hand-written staging fixture and compared with rows worked out by hand (never produced by
the code under test), then published through the real publisher for every consumer under
the real sharing policies: only the granted fields, k respected, no identifier of the fixture.

Times: Shanghai is UTC+8, so 2026-11-19T16:00Z is the start of the local 20th.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kernel.settings import Settings
from privacy.keys import HubKeys, init_keys
from privacy.policy import Policy, load_policies
from schemas.contract import load_contract
from schemas.feeds import load_feeds
from tests.conftest import make_settings
from tests.leaks import find_leaks, texts_of_lake
from warehouse.marts import build_marts
from warehouse.migrations import migrate
from warehouse.publisher import publish_feed

CID = "music-square"
FEEDS = [
    "access.entries_daily",
    "services.fees_monthly",
    "services.repairs",
    "community.volunteers_monthly",
    "governance.votes",
]
# DESIGN.md, Feeds: who is granted what, and under k or not.
GRANTS: dict[str, dict[str, int | None]] = {
    "access.entries_daily": {"district": 5, "public_security": None},
    "services.fees_monthly": {"district": 5},
    "services.repairs": {"district": None},
    "community.volunteers_monthly": {"district": 5},
    "governance.votes": {"district": None, "open_data": None},
}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def stage(con: duckdb.DuckDBPyConnection, stream: str, rows: list[dict[str, Any]]) -> None:
    """A staging table of the contract's de-identified schema holding `rows` (missing columns null)."""
    schema = load_contract(stream).staging_schema()
    columns = {f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in schema}
    con.register("fixture", pa.table(columns))
    con.execute(f"CREATE OR REPLACE TABLE stg_{stream} AS SELECT * FROM fixture")
    con.unregister("fixture")


# --- door access -------------------------------------------------------------------------------


def door(record: str, at: str, building: int, unit: int, method: str, person: str | None, result: str = "success",
         batch: str = "door_access/a") -> dict[str, Any]:  # fmt: skip
    return {
        "record_id": record, "community_id": CID, "event_time": utc(at), "building": building, "unit": unit,
        "method": method, "person_type": person, "result": result, "source_file": "20261120.csv",
        "card_no_token": "tok-card-" + record, "person_name_token": "tok-name-" + record, "_batch_id": batch,
    }  # fmt: skip


DOOR = [
    door("r01", "2026-11-20T01:00:00", 3, 1, "face", "owner"),
    door("r01", "2026-11-20T01:00:00", 3, 1, "face", "owner", batch="door_access/b"),  # the export dropped again
    door("r02", "2026-11-20T02:00:00", 3, 1, "face", "family"),
    door("r03", "2026-11-20T03:00:00", 3, 1, "face", "visitor"),
    door("r04", "2026-11-20T04:00:00", 3, 1, "face", None),
    door("r05", "2026-11-20T05:00:00", 3, 1, "face", "owner", result="failure"),
    *(door(f"r1{i}", f"2026-11-20T0{i}:30:00", 3, 1, "face", "owner") for i in range(6)),
    door("r06", "2026-11-19T17:00:00", 3, 1, "card", "tenant"),  # local 01:00 on the 20th
    door("r07", "2026-11-19T15:59:00", 3, 1, "card", "tenant"),  # local 23:59 on the 19th
    door("r08", "2026-11-20T06:00:00", 5, 2, "wechat", "staff"),
]
D19, D20 = date(2026, 11, 19), date(2026, 11, 20)
ENTRY_COLUMNS = ["entries", "resident_entries", "visitor_entries", "other_entries", "refused"]
# (day, building, unit, method) -> entries, residents, visitors, others, refused
ENTRIES = [
    (D19, 3, 1, "card", (1, 1, 0, 0, 0)),
    (D20, 3, 1, "card", (1, 1, 0, 0, 0)),
    (D20, 3, 1, "face", (10, 8, 1, 1, 1)),  # r01 once, r02, r10-r15 residents; r03; r04; r05 refused
    (D20, 5, 2, "wechat", (1, 0, 0, 1, 0)),
]
# District, k = 5: 1-4 suppressed; in the face row visitors + others = 2 < 5, so entries goes too.
ENTRIES_DISTRICT = [
    (None, None, 0, 0, 0),
    (None, None, 0, 0, 0),
    (None, 8, None, None, None),
    (None, 0, 0, None, 0),
]


# --- fees ----------------------------------------------------------------------------------------

AREAS = {"h01": 85.25, "h02": 60.0, **{f"h{i:02d}": 100.0 for i in range(3, 13)}}  # 1,145.25 m²


def household(key: str, updated: str = "2026-11-01T00:00:00", batch: str = "hh/a") -> dict[str, Any]:
    return {
        "community_id": CID, "household_id_token": "tok-" + key, "building": 3, "unit": 1, "floor": 2,
        "address_token": "tok-addr-" + key, "area_m2": AREAS[key], "arrears_fen": 0,
        "created_at": utc("2026-01-01T00:00:00"), "updated_at": utc(updated), "_batch_id": batch,
    }  # fmt: skip


HOUSEHOLDS = [household(k) for k in AREAS] + [household("h01", "2026-11-02T00:00:00", "hh/b")]  # h01 twice


def payment(pid: str, key: str, fee: str, period: str, fen: int, updated: str = "2026-11-05T02:00:00",
            batch: str = "fee/a") -> dict[str, Any]:  # fmt: skip
    return {
        "community_id": CID, "payment_id": pid, "household_id_token": "tok-" + key, "fee_type": fee,
        "period": period, "amount_fen": fen, "channel": "wechat", "trade_no_token": "tok-trade-" + pid,
        "paid_at": utc(updated), "updated_at": utc(updated), "_batch_id": batch,
    }  # fmt: skip


PAYMENTS = [
    *(payment(f"O{i:02d}", f"h{i:02d}", "property", "2026-10", 9_000, "2026-10-10T02:00:00") for i in range(1, 13)),
    *(payment(f"N{i:02d}", f"h{i:02d}", "property", "2026-11", 10_000) for i in range(1, 12) if i != 3),
    payment("N03", "h03", "property", "2026-11", 100, "2026-11-05T01:00:00"),  # corrected later:
    payment("N03", "h03", "property", "2026-11", 10_000, "2026-11-06T01:00:00", "fee/b"),
    payment("N99", "h01", "property", "2026-11", 5_000),  # h01 pays twice: one household
    payment("K01", "h03", "parking", "2026-11", 15_000),
    payment("K02", "h04", "parking", "2026-11", 15_000),
]


def charge(cid: str, exit_at: str, due: int, paid: int, status: str, updated: str = "2026-11-10T10:00:00",
           batch: str = "pc/a") -> dict[str, Any]:  # fmt: skip
    return {
        "charge_id": cid, "record_id": "rec-" + cid, "park_code": "P1", "community_id": CID, "gate_code": "G1",
        "plate_no_token": "tok-plate-" + cid, "exit_time": utc(exit_at), "amount_fen": due, "paid_fen": paid,
        "pay_method": "wechat", "status": status, "paid_at": None, "updated_at": utc(updated), "_batch_id": batch,
    }  # fmt: skip


CHARGES = [
    charge("c01", "2026-11-10T09:00:00", 500, 0, "unpaid", "2026-11-10T09:00:00"),  # then paid:
    charge("c01", "2026-11-10T09:00:00", 500, 500, "paid", "2026-11-10T09:05:00", "pc/b"),
    *(charge(f"c{i:02d}", "2026-11-10T09:00:00", 500, 500, "paid") for i in range(2, 13)),
    charge("c13", "2026-11-11T09:00:00", 800, 0, "unpaid"),
    charge("c14", "2026-11-11T09:00:00", 500, 500, "refunded"),  # not due any more
    charge("c15", "2026-11-11T09:00:00", 0, 0, "paid"),  # free stay: nothing was due
    charge("c16", "2026-11-30T17:00:00", 300, 300, "paid"),  # local 1 December
]
OCT, NOV, DEC = date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)
FEE_COLUMNS = ["due_count", "paid_count", "unpaid_count", "due_fen", "collected_fen", "collection_rate"]
FEES = [
    (OCT, "property", (12, 12, 0, None, 108_000, 1.0)),
    (NOV, "parking_permit", (None, 2, None, None, None, None)),  # 2 payers < 10: no amount
    (NOV, "property", (12, 11, 1, None, 115_000, None)),  # 1 unpaid < 10: no rate
    (NOV, "visitor_parking", (13, 12, 1, 6_800, 6_000, None)),
    (DEC, "visitor_parking", (1, 1, 0, None, None, None)),
]
# District, k = 5: a single unpaid bill is suppressed, and with it the paid count (the
# smaller of the two others of due = paid + unpaid).
FEES_DISTRICT = [
    (12, 12, 0, None, 108_000, 1.0),
    (None, None, None, None, None, None),
    (12, None, None, None, 115_000, None),
    (13, None, None, 6_800, 6_000, None),
    (None, None, 0, None, None, None),
]


# --- repairs ---------------------------------------------------------------------------------------


def repair(rid: str, submitted: str, status: str, updated: str, resolved: str | None = None,
           rating: int | None = None, batch: str = "rep/a", text: str = "厨房水管漏水") -> dict[str, Any]:  # fmt: skip
    return {
        "community_id": CID, "request_id": rid, "household_id_token": "tok-hh-" + rid, "category": "plumbing",
        "description": text, "status": status, "submitted_at": utc(submitted),
        "resolved_at": utc(resolved) if resolved else None, "rating": rating, "updated_at": utc(updated),
        "_batch_id": batch,
    }  # fmt: skip


REPAIRS = [
    repair("Q1", "2026-11-20T01:23:45", "submitted", "2026-11-20T01:23:45"),
    repair("Q1", "2026-11-20T01:23:45", "assigned", "2026-11-21T00:53:45", batch="rep/b"),
    repair("Q1", "2026-11-20T01:23:45", "resolved", "2026-11-21T06:23:45", "2026-11-21T06:23:45", 5, "rep/c"),
    repair("Q2", "2026-11-20T17:00:00", "submitted", "2026-11-20T17:00:00", text="楼道灯不亮"),  # local 21st
    # First seen already resolved: the response is no later than the resolution.
    repair("Q3", "2026-11-20T02:00:00", "resolved", "2026-11-20T08:00:00", "2026-11-20T07:30:00", 4, text="门锁坏了"),
]
REPAIR_COLUMNS = ["day", "submitted_at", "status", "response_hours", "resolution_hours", "rating", "description"]
REPAIR_ROWS = [
    (D20, utc("2026-11-20T01:23:45"), "resolved", 23.5, 29.0, 5, "厨房水管漏水"),
    (D20, utc("2026-11-20T02:00:00"), "resolved", 5.5, 5.5, 4, "门锁坏了"),
    (date(2026, 11, 21), utc("2026-11-20T17:00:00"), "submitted", None, None, None, "楼道灯不亮"),
]


# --- volunteers ------------------------------------------------------------------------------------


def signup(sid: str, who: str, activity: str, start: str, status: str, hours: float | None = None,
           updated: str = "2026-11-20T12:00:00", batch: str = "vol/a") -> dict[str, Any]:  # fmt: skip
    return {
        "community_id": CID, "signup_id": sid, "resident_id_token": "tok-res-" + who, "activity": activity,
        "activity_start": utc(start), "hours": hours, "status": status, "updated_at": utc(updated),
        "_batch_id": batch,
    }  # fmt: skip


VISIT = "2026-11-15T01:00:00"
VOLUNTEERS = [
    signup("s01", "p01", "elderly_visit", VISIT, "signed_up", updated="2026-11-10T12:00:00"),  # then attended:
    signup("s01", "p01", "elderly_visit", VISIT, "attended", 2.0, batch="vol/b"),
    *(signup(f"s{i:02d}", f"p{i:02d}", "elderly_visit", VISIT, "attended", 2.0) for i in range(2, 10)),
    signup("s10", "p10", "elderly_visit", VISIT, "attended", 3.5),
    signup("s11", "p11", "elderly_visit", VISIT, "absent", 0.0),
    signup("s12", "p12", "elderly_visit", VISIT, "cancelled"),
    signup("s13", "p13", "elderly_visit", "2026-11-28T01:00:00", "signed_up"),
    signup("s20", "p01", "waste_sorting", "2026-10-31T17:00:00", "attended", 1.5),  # local 1 November
    signup("s21", "p02", "waste_sorting", VISIT, "attended", 2.0),
    signup("s30", "p03", "security_patrol", "2026-10-31T15:00:00", "signed_up"),  # local 31 October
]
VOLUNTEER_COLUMNS = ["signups", "attended", "absent", "cancelled", "pending", "volunteers", "hours"]
VOLUNTEER_ROWS = [
    (OCT, "security_patrol", (1, 0, 0, 0, 1, 0, 0.0)),
    (NOV, "elderly_visit", (13, 10, 1, 1, 1, 10, 21.5)),
    (NOV, "waste_sorting", (2, 2, 0, 0, 0, 2, None)),  # hours of 2 volunteers: withheld
]
# District, k = 5: three single cells of one relation add up to 3 < 5, so signups goes too.
VOLUNTEERS_DISTRICT = [
    (None, 0, 0, 0, None, 0, 0.0),
    (None, 10, None, None, None, 10, 21.5),
    (None, None, 0, 0, 0, None, None),
]


# --- votes (the leaf and tree written out from docs/votes.md with hashlib alone) -------------------


def commitment_of(receipt: str) -> str:
    return hashlib.sha256(("neuron-hub/ballot-receipt/v1:" + receipt.replace("-", "")).encode()).hexdigest()


def leaf_of(motion: str, receipt: str, choice: str, centi_m2: int) -> bytes:
    parts = [CID, motion, commitment_of(receipt), choice, str(centi_m2)]
    body = "neuron-hub/ballot-leaf/v1" + "".join(f"{len(p.encode())}:{p}," for p in parts)
    return hashlib.sha256(b"\x00" + body.encode()).digest()


def node_of(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


RECEIPTS = {
    "a_old": "0000-1111-2222-3333-4444-5555-6666-7777",
    "a": "a1a1-a1a1-0000-0000-0000-0000-0000-0001",
    "b": "b2b2-b2b2-0000-0000-0000-0000-0000-0002",
    "c": "c3c3-c3c3-0000-0000-0000-0000-0000-0003",
    "d": "d4d4-d4d4-0000-0000-0000-0000-0000-0004",
}
TITLE = "关于更换屋面防水层的表决"


def ballot(bid: str, who: str, key: str, motion: str, choice: str, receipt: str, cast: str,
           updated: str | None = None, batch: str = "vote/a") -> dict[str, Any]:  # fmt: skip
    return {
        "community_id": CID, "ballot_id": bid, "motion_id": motion, "motion_title": TITLE,
        "resident_id_token": "tok-res-" + who, "household_id_token": "tok-" + key, "choice": choice,
        "area_m2": AREAS[key], "cast_at": utc(cast), "receipt_commitment": commitment_of(RECEIPTS[receipt]),
        "updated_at": utc(updated or cast), "_batch_id": batch,
    }  # fmt: skip


BALLOTS = [
    ballot("B1", "a", "h01", "M1", "oppose", "a_old", "2026-11-02T01:00:00"),  # a changes their mind:
    ballot("B1", "a", "h01", "M1", "agree", "a", "2026-11-03T01:00:00", batch="vote/b"),
    ballot("B2", "b", "h02", "M1", "oppose", "b", "2026-11-02T02:00:00"),
    ballot("B3", "c", "h01", "M1", "agree", "c", "2026-11-04T02:00:00"),  # a's co-owner: same flat
    ballot("B4", "d", "h05", "M2", "abstain", "d", "2026-11-30T17:00:00"),  # local 1 December
]
# (receipt key, motion, choice, area in hundredths of m²) of every counted ballot
COUNTED = [("a", "M1", "agree", 8525), ("b", "M1", "oppose", 6000), ("c", "M1", "agree", 8525),
           ("d", "M2", "abstain", 10000)]  # fmt: skip


def m1_root() -> str:
    # Three sorted leaves: the first two pair up, the third goes up alone, then the two meet.
    first, second, third = sorted(leaf_of(m, RECEIPTS[r], c, w) for r, m, c, w in COUNTED[:3])
    return node_of(node_of(first, second), third).hex()


VOTE_COLUMNS = [
    "month", "motion_id", "first_ballot_day", "last_ballot_day", "ballots", "agree", "oppose", "abstain",
    "agree_area_m2", "oppose_area_m2", "abstain_area_m2", "households_voted", "households_eligible", "turnout",
    "area_eligible_m2", "area_turnout", "leaf_count",
]  # fmt: skip
VOTE_ROWS = [
    # M1: 3 ballots, 2 flats (h01 twice): 2/12 = 0.1667; (85.25 + 60) / 1145.25 = 0.12683
    (NOV, "M1", date(2026, 11, 2), date(2026, 11, 4), 3, 2, 1, 0, 170.5, 60.0, 0.0, 2, 12, 0.1667, 1145.25, 0.1268, 3),
    # M2: 1 ballot: 1/12 = 0.0833; 100 / 1145.25 = 0.08732
    (DEC, "M2", DEC, DEC, 1, 0, 0, 1, 0.0, 0.0, 100.0, 1, 12, 0.0833, 1145.25, 0.0873, 1),
]


def build_fixture(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every staging table of the five feeds, then the marts; the models that ran."""
    con.execute("SET TimeZone = 'UTC'")
    stage(con, "door_access", DOOR)
    stage(con, "platform_households", HOUSEHOLDS)
    stage(con, "platform_fee_payments", PAYMENTS)
    stage(con, "parking_charges", CHARGES)
    stage(con, "platform_repairs", REPAIRS)
    stage(con, "platform_volunteers", VOLUNTEERS)
    stage(con, "platform_votes", BALLOTS)
    return build_marts(con)


def fixture_identifiers() -> set[str]:
    """What must never leave: every token, record/ballot/request id and receipt of the fixture."""
    values = set(RECEIPTS.values()) | {r.replace("-", "") for r in RECEIPTS.values()}
    values |= {commitment_of(r) for r in RECEIPTS.values()}
    for rows, keys in [
        (DOOR, ["record_id", "card_no_token", "person_name_token"]),
        (HOUSEHOLDS, ["household_id_token", "address_token"]),
        (PAYMENTS, ["household_id_token", "trade_no_token"]),
        (CHARGES, ["record_id", "plate_no_token"]),
        (REPAIRS, ["household_id_token"]),
        (VOLUNTEERS, ["resident_id_token"]),
        (BALLOTS, ["resident_id_token", "household_id_token", "ballot_id"]),
    ]:
        values |= {str(r[k]) for r in rows for k in keys if r.get(k)}
    return values


@pytest.fixture(scope="module")
def marts() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    build_fixture(con)
    yield con
    con.close()


def rows_of(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in con.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()]


# --- the marts against the hand-computed rows -------------------------------------------------------


def test_the_five_models_run(marts: duckdb.DuckDBPyConnection) -> None:
    ran = build_marts(marts)
    for model in ["50_access_entries_daily", "55_services_fees_monthly", "60_services_repairs",
                  "65_community_volunteers_monthly", "70_governance_votes"]:  # fmt: skip
        assert model in ran


def test_door_entries_per_entrance_method_and_local_day(marts: duckdb.DuckDBPyConnection) -> None:
    got = rows_of(marts, "mart_access_entries_daily", ["community_id", "day", "building", "unit", "method",
                                                        *ENTRY_COLUMNS])  # fmt: skip
    assert got == [(CID, d, b, u, m, *counts) for d, b, u, m, counts in ENTRIES]


def test_fee_collection_per_month_and_fee_type(marts: duckdb.DuckDBPyConnection) -> None:
    got = rows_of(marts, "mart_services_fees_monthly", ["community_id", "month", "fee_type", *FEE_COLUMNS])
    assert got == [(CID, m, f, *values) for m, f, values in FEES]


def test_repairs_with_response_and_resolution_times(marts: duckdb.DuckDBPyConnection) -> None:
    got = rows_of(marts, "mart_services_repairs", REPAIR_COLUMNS)
    assert got == REPAIR_ROWS


def test_volunteering_per_activity_and_month(marts: duckdb.DuckDBPyConnection) -> None:
    got = rows_of(marts, "mart_community_volunteers_monthly", ["month", "activity", *VOLUNTEER_COLUMNS])
    assert got == [(m, a, *values) for m, a, values in VOLUNTEER_ROWS]


def test_vote_tallies_turnout_and_the_merkle_root(marts: duckdb.DuckDBPyConnection) -> None:
    got = rows_of(marts, "mart_governance_votes", VOTE_COLUMNS)
    assert got == VOTE_ROWS
    roots = dict(rows_of(marts, "mart_governance_votes", ["motion_id", "merkle_root"]))
    assert roots["M1"] == m1_root()
    # One ballot: the root is its leaf.
    assert roots["M2"] == leaf_of("M2", RECEIPTS["d"], "abstain", 10000).hex()
    leaves, tags = rows_of(marts, "mart_governance_votes", ["leaf_hashes", "lookup_tags"])[0]
    expected = sorted(leaf_of(m, RECEIPTS[r], c, w).hex() for r, m, c, w in COUNTED[:3])
    assert leaves.split(",") == expected
    by_leaf = {leaf_of(m, RECEIPTS[r], c, w).hex(): r for r, m, c, w in COUNTED[:3]}
    tag_of = {
        r: hashlib.sha256(("neuron-hub/ballot-lookup/v1:" + commitment_of(RECEIPTS[r])).encode()).hexdigest()
        for r in RECEIPTS
    }
    assert tags.split(",") == [tag_of[by_leaf[leaf]] for leaf in expected]  # the replaced ballot is gone


# --- published through the real publisher, for every consumer ----------------------------------------


@pytest.fixture(scope="module")
def published(marts: duckdb.DuckDBPyConnection, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = make_settings(tmp_path_factory.mktemp("hub"))
    init_keys(settings)
    migrate(settings.control_url)
    keys, feeds = HubKeys.load(settings), load_feeds()
    policies = load_policies(settings.policies_dir)
    for name in FEEDS:
        publish_feed(marts, settings, keys, feeds[name], policies)
    return settings


def consumer_rows(settings: Settings, consumer: str, feed: str) -> tuple[list[str], list[dict[str, Any]]]:
    files = sorted((settings.lake_path / consumer / feed).rglob("*.parquet"))
    tables = [pq.read_table(f) for f in files]
    names = tables[0].column_names if tables else []
    return names, [row for t in tables for row in t.to_pylist()]


def policies(settings: Settings) -> dict[str, Policy]:
    return load_policies(settings.policies_dir)


@pytest.mark.parametrize("feed", FEEDS)
def test_each_consumer_gets_the_feed_only_as_its_policy_grants(published: Settings, feed: str) -> None:
    catalog = load_feeds()[feed]
    for consumer, policy in policies(published).items():
        names, rows = consumer_rows(published, consumer, feed)
        if consumer not in GRANTS[feed]:
            assert not policy.grants(feed) and rows == []
            continue
        assert policy.k_for(feed) <= 10  # the marts' floor for sums and rates (see their SQL)
        assert (policy.feeds[feed].k or None) == GRANTS[feed][consumer]
        assert names == policy.published_fields(catalog) and rows


def test_district_entries_are_suppressed_below_k_and_police_get_them_whole(published: Settings) -> None:
    _, district = consumer_rows(published, "district", "access.entries_daily")
    assert [tuple(r[c] for c in ENTRY_COLUMNS) for r in district] == ENTRIES_DISTRICT
    _, police = consumer_rows(published, "public_security", "access.entries_daily")
    assert [tuple(r[c] for c in ENTRY_COLUMNS) for r in police] == [counts for *_, counts in ENTRIES]


def test_district_fees_are_suppressed_below_k(published: Settings) -> None:
    _, rows = consumer_rows(published, "district", "services.fees_monthly")
    assert [(r["month"], r["fee_type"]) for r in rows] == [(m, f) for m, f, _ in FEES]
    assert [tuple(r[c] for c in FEE_COLUMNS) for r in rows] == FEES_DISTRICT


def test_district_volunteering_is_suppressed_below_k(published: Settings) -> None:
    _, rows = consumer_rows(published, "district", "community.volunteers_monthly")
    assert [tuple(r[c] for c in VOLUNTEER_COLUMNS) for r in rows] == VOLUNTEERS_DISTRICT


def test_district_repairs_come_to_the_hour(published: Settings) -> None:
    _, rows = consumer_rows(published, "district", "services.repairs")
    assert [r["submitted_at"] for r in rows] == [
        utc("2026-11-20T01:00:00"), utc("2026-11-20T02:00:00"), utc("2026-11-20T17:00:00")
    ]  # fmt: skip
    assert [(r["day"], r["response_hours"], r["description"]) for r in rows] == [
        (d, resp, text) for d, _, _, resp, _, _, text in REPAIR_ROWS
    ]


def test_votes_are_the_same_for_district_and_open_data(published: Settings) -> None:
    _, district = consumer_rows(published, "district", "governance.votes")
    _, open_data = consumer_rows(published, "open_data", "governance.votes")
    assert district == open_data
    assert [r["merkle_root"] for r in district] == [m1_root(), leaf_of("M2", RECEIPTS["d"], "abstain", 10000).hex()]
    partitions = sorted(p.relative_to(published.lake_path / "open_data").parent.as_posix()
                        for p in (published.lake_path / "open_data").rglob("*.parquet"))  # fmt: skip
    assert partitions == [
        f"governance.votes/community_id={CID}/month=2026-11-01",
        f"governance.votes/community_id={CID}/month=2026-12-01",
    ]


def test_no_identifier_of_the_fixture_leaves(published: Settings) -> None:
    assert find_leaks(fixture_identifiers(), texts_of_lake(published.lake_path)) == []


def test_publishing_again_writes_no_new_version(published: Settings, marts: duckdb.DuckDBPyConnection) -> None:
    settings, feeds = published, load_feeds()
    again = [
        p
        for name in FEEDS
        for p in publish_feed(marts, settings, HubKeys.load(settings), feeds[name], policies(settings))
    ]
    assert again == []


def test_a_feed_needs_every_source_table(tmp_path: Path) -> None:
    con = duckdb.connect()
    stage(con, "platform_votes", BALLOTS)  # no households yet: turnout cannot be computed
    assert "70_governance_votes" not in build_marts(con)


@pytest.mark.slow
def test_repairs_from_the_simulated_platform_reach_the_district_scrubbed(tmp_path: Path) -> None:
    from datetime import timedelta

    import pipeline
    from connectors.sql import SqlSource
    from simulator.community import Community
    from simulator.platform import PlatformSimulator
    from simulator.truth import identifiers_of
    from tests.connectors.hub_sources import hub_settings

    sim = PlatformSimulator(Community(households_count=60, buildings=2))
    url = f"sqlite:///{tmp_path / 'platform.db'}"
    sim.write_days(url, 4)
    settings = hub_settings(tmp_path / "hub", platform=SqlSource(url=url, batch_size=500))
    for offset in (2, 3):  # the first requests are written on the third day
        pipeline.run_window(settings, "platform_repairs", *sim.window(sim.first_day + timedelta(days=offset)))
    _, rows = consumer_rows(settings, "district", "services.repairs")
    assert len(rows) >= 5
    assert any("[MOBILE]" in r["description"] or "[ROOM]" in r["description"] for r in rows)  # scrubbed, kept
    assert all(r["response_hours"] <= r["resolution_hours"] for r in rows if r["resolution_hours"] is not None)
    assert find_leaks(identifiers_of(sim.ground_truth()), texts_of_lake(settings.lake_path)) == []


def test_a_day_inside_a_month_republishes_that_whole_month(tmp_path: Path, marts: duckdb.DuckDBPyConnection) -> None:
    """A daily pipeline run names the days it touched: a monthly feed publishes their months."""
    settings = make_settings(tmp_path)
    init_keys(settings)
    migrate(settings.control_url)
    keys, feeds = HubKeys.load(settings), load_feeds()
    written = publish_feed(marts, settings, keys, feeds["governance.votes"], policies(settings), [date(2026, 11, 17)])
    assert {(p.consumer, p.partition_key) for p in written} == {
        (consumer, f"community_id={CID}/month=2026-11-01") for consumer in ("district", "open_data")
    }
