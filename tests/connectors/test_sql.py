"""The SQL connector family against real databases (SQLite, MariaDB, PostgreSQL): keyset
pages that neither lose nor double rows sharing one updated_at, read-only connections,
half-open windows, and errors split by what the caller should do."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from connectors.sql import read_window
from kernel.errors import ConfigError, FatalError, RetriableError
from simulator.platform import PlatformSimulator
from simulator.platform_faults import PlatformFaults
from simulator.platform_schema import residents
from tests.connectors.databases import ENGINES, temporary_database
from transport.sql import read_only_engine

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 1)


@pytest.fixture(params=ENGINES)
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[PlatformSimulator, str]]:
    """A platform database on each engine, with its go-live day written."""
    with temporary_database(request.param, tmp_path) as url:
        sim = PlatformSimulator(faults=PlatformFaults.none())
        sim.write_days(url, 1)
        yield sim, url


def read_keys(url: str, table: str, since: datetime, until: datetime, batch: int) -> list[list[tuple[str, str]]]:
    engine = read_only_engine(url)
    try:
        pages = read_window(engine, table, "updated_at", since, until, batch, TZ)
        key = "resident_id" if table == "residents" else "household_id"
        return [[(r["updated_at"], r[key]) for r in page] for page in pages]
    finally:
        engine.dispose()


@pytest.mark.parametrize("batch", [7, 500])
def test_rows_sharing_one_updated_at_across_page_boundaries_are_neither_lost_nor_doubled(
    platform: tuple[PlatformSimulator, str], batch: int
) -> None:
    sim, url = platform
    since, until = sim.window(DAY)
    expected = sim.expected("residents", since, until)
    shared = sum(r["updated_at"] == expected[0]["updated_at"] for r in expected)
    assert shared > 1000  # the go-live import stamped them all with one time
    pages = read_keys(url, "residents", since, until, batch)
    keys = [k for _, k in (row for page in pages for row in page)]
    assert keys == [r["resident_id"] for r in expected]  # all of them, once, in (updated_at, key) order
    assert len(set(keys)) == len(keys)
    assert all(len(page) <= batch for page in pages)
    # The instrument works: several page boundaries fall inside the group sharing one time.
    inside = sum(a[-1][0] == b[0][0] for a, b in pairwise(pages))
    assert inside >= (shared // batch) - 1 >= 1


def test_windows_are_half_open_and_times_carry_the_sources_offset(platform: tuple[PlatformSimulator, str]) -> None:
    sim, url = platform
    job = datetime(2026, 11, 1, 2, tzinfo=TZ)  # the arrears job stamped every household at 02:00:00
    before = read_keys(url, "households", job - timedelta(hours=2), job, 1000)
    at = read_keys(url, "households", job, job + timedelta(seconds=1), 1000)
    assert sum(map(len, before)) == 0
    rows = [row for page in at for row in page]
    assert len(rows) == len(sim.expected("households", job, job + timedelta(seconds=1))) == 706
    assert {t for t, _ in rows} == {"2026-11-01T02:00:00+08:00"}


def test_the_connection_cannot_write(platform: tuple[PlatformSimulator, str]) -> None:
    _, url = platform
    engine = read_only_engine(url)
    try:
        with pytest.raises(SQLAlchemyError), engine.begin() as conn:
            conn.execute(delete(residents))
    finally:
        engine.dispose()
    writable = create_engine(url)
    try:
        with writable.connect() as conn:
            assert conn.execute(select(func.count()).select_from(residents)).scalar_one() > 1000
    finally:
        writable.dispose()


def test_a_missing_table_is_fatal(platform: tuple[PlatformSimulator, str]) -> None:
    _, url = platform
    since, until = PlatformSimulator().window(DAY)
    with pytest.raises(FatalError, match="does not exist"):
        read_keys(url, "no_such_table", since, until, 10)


def test_an_unreachable_database_is_retriable_and_says_so_without_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    url = f"postgresql+psycopg://reader:s3cret@127.0.0.1:{port}/platform"
    since, until = PlatformSimulator().window(DAY)
    with pytest.raises(RetriableError, match="unavailable") as caught:
        read_keys(url, "residents", since, until, 10)
    assert "s3cret" not in str(caught.value)


def test_an_unconfigured_source_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="no database URL"):
        read_only_engine("")
