"""The simulated WeChat platform: the same rows on every database, many rows sharing one
updated_at, faults logged, schema drift applied on each engine, a ground truth that
covers every identifier, and several communities in one database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text
from stdnum.cn import ric

from simulator.community import Community
from simulator.parking import ParkingSimulator
from simulator.platform import PlatformSimulator
from simulator.platform_schema import DRIFTS, KEYS, TABLES
from simulator.truth import identifiers_of, read_truth, write_truth
from tests.connectors.databases import ENGINES, temporary_database


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with temporary_database(request.param, tmp_path) as url:
        yield url


def table_rows(url: str, table: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            live = TABLES[table]
            return sorted(tuple(r) for r in conn.execute(select(live.c[KEYS[table]], live.c.updated_at)))
    finally:
        engine.dispose()


def test_the_same_seed_writes_the_same_rows_on_every_database(database: str, tmp_path: Path) -> None:
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    PlatformSimulator().write_days(reference, 2)
    PlatformSimulator().write_days(database, 2)
    for table in ("residents", "fee_payments", "circle_posts"):
        assert table_rows(database, table) == table_rows(reference, table)


def test_schema_drift_applies_on_every_database(database: str) -> None:
    sim = PlatformSimulator()
    sim.write_days(database, 1)
    for kind in DRIFTS:
        sim.drift(database, kind)
    sim.write_days(database, 1)
    engine = create_engine(database)
    try:
        columns = {t: {c["name"]: c for c in inspect(engine).get_columns(t)} for t in set(DRIFTS.values())}
    finally:
        engine.dispose()
    assert "unionid" in columns["residents"]
    assert "content" in columns["repairs"] and "description" not in columns["repairs"]
    assert columns["volunteers"]["hours"]["type"].python_type is str
    assert sim.ground_truth()["unionids"]


def test_a_day_has_groups_of_rows_sharing_one_updated_at(tmp_path: Path) -> None:
    sim = PlatformSimulator()
    sim.write_days(f"sqlite:///{tmp_path / 'p.db'}", 1)
    counts: dict[object, int] = {}
    for row in sim.tables["households"].values():
        counts[row["updated_at"]] = counts.get(row["updated_at"], 0) + 1
    assert max(counts.values()) > 600  # the 02:00 arrears job


def test_faults_are_logged_and_break_the_contract(tmp_path: Path) -> None:
    sim = PlatformSimulator()
    sim.write_days(f"sqlite:///{tmp_path / 'p.db'}", 2)
    kinds = {(t, f[0]) for (t, _), f in sim.fault_log.items()}
    assert {t for t, _ in kinds} == set(KEYS)  # every table has faults
    ids = [r["id_number"] for r in sim.tables["residents"].values() if r.get("_fault", ("", ""))[1] != "id_number"]
    assert all(ric.is_valid(i) for i in ids)


def test_the_ground_truth_covers_every_direct_identifier_written(tmp_path: Path) -> None:
    sim = PlatformSimulator(Community(households_count=40, buildings=2))
    sim.write_days(f"sqlite:///{tmp_path / 'p.db'}", 2)
    truth = sim.ground_truth()
    for table, field, kind in [
        ("residents", "phone", "phones"),
        ("residents", "id_number", "id_numbers"),
        ("residents", "openid", "openids"),
        ("households", "address", "addresses"),
        ("votes", "resident_id", "resident_ids"),
    ]:
        assert {r[field] for r in sim.tables[table].values()} <= set(truth[kind])
    write_truth(ParkingSimulator(households=40), tmp_path / "truth.json", [truth])
    written = read_truth(tmp_path / "truth.json")
    assert set(truth["phones"]) | set(written["plates"]) <= identifiers_of(written)


def test_several_communities_share_one_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'district.db'}"
    for n, name in enumerate(["music-square", "changshou-garden"]):
        PlatformSimulator(Community(seed=7 + n, community_id=name, households_count=50, buildings=3)).write_days(url, 1)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            counts = dict(
                conn.execute(text("SELECT community_id, count(*) FROM households GROUP BY community_id")).all()
            )
    finally:
        engine.dispose()
    assert counts == {"music-square": 50, "changshou-garden": 50}
    assert date(2026, 11, 1) == PlatformSimulator().first_day
