"""The district past one machine: the Iceberg catalog in PostgreSQL, one committer per table by
advisory lock (skips with a reason where PostgreSQL is not running; CI requires it)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from district.ingest import gather
from district.locks import committer_lock
from kernel.errors import RetriableError
from tests.district.hubs import DAY, assert_lake_holds, district_bench
from tests.services import temporary_postgres_database

AIR = "env.air_quality_hourly"


def test_a_postgresql_catalog_holds_the_lake_exactly_once(tmp_path: Path) -> None:
    with (
        temporary_postgres_database() as url,
        district_bench(tmp_path, played=2, real=1, feeds=[AIR], catalog_uri=url) as bench,
    ):
        assert gather(bench.settings).committed == 3
        bench.server.publish("played-000", AIR, DAY, version=2)
        report = gather(bench.settings)
        assert (report.committed, report.replaced) == (1, 1)
        (bench.settings.home_path / "state" / "cursors.json").unlink()
        assert gather(bench.settings).committed == 0
        assert_lake_holds(bench)
        assert not (bench.settings.home_path / "catalog.db").exists()

        # The advisory lock holds across connections (and so across machines sharing the catalog).
        settings = bench.settings.model_copy(update={"lock_timeout_seconds": 0.2})
        held, release = threading.Event(), threading.Event()

        def holder() -> None:
            with committer_lock(settings, "district.env_air_quality_hourly"):
                held.set()
                release.wait(10)

        thread = threading.Thread(target=holder)
        thread.start()
        held.wait(10)
        try:
            with pytest.raises(RetriableError), committer_lock(settings, "district.env_air_quality_hourly"):
                pass
        finally:
            release.set()
            thread.join()
        bench.lake().catalog.engine.dispose()  # type: ignore[attr-defined]
