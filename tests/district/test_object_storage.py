"""The district past one machine (issue 21 item 6): the Iceberg warehouse on S3-compatible
object storage and the catalog in PostgreSQL, as docs/district.md describes it. Nothing of the
lake lands on the district's local disk; exactly once holds as on a local warehouse."""

from __future__ import annotations

from pathlib import Path

from pyarrow import fs

from district.ingest import gather
from tests.district.hubs import DAY, assert_lake_holds, district_bench
from tests.district.s3_store import s3_store
from tests.services import temporary_postgres_database

AIR = "env.air_quality_hourly"
BUCKET = "district-lake"


def test_the_lake_on_object_storage_with_a_postgresql_catalog_holds_every_version_exactly_once(
    tmp_path: Path,
) -> None:
    with (
        s3_store(BUCKET) as store,
        temporary_postgres_database() as url,
        district_bench(
            tmp_path,
            played=2,
            real=1,
            feeds=[AIR],
            catalog_uri=url,
            warehouse=f"s3://{BUCKET}/warehouse",
            catalog_properties=store.properties(),
        ) as bench,
    ):
        assert gather(bench.settings).committed == 3
        bench.server.publish("played-000", AIR, DAY, version=2)
        report = gather(bench.settings)
        assert (report.committed, report.replaced) == (1, 1)
        # A replay after losing the local cursors is a no-op: the ledger is in the snapshots.
        (bench.settings.home_path / "state" / "cursors.json").unlink()
        assert gather(bench.settings).committed == 0
        assert_lake_holds(bench)

        # The data and metadata files are objects in the bucket, none on local disk.
        objects = store.filesystem().get_file_info(fs.FileSelector(f"{BUCKET}/warehouse", recursive=True))
        names = [o.path for o in objects if o.type == fs.FileType.File]
        assert any(n.endswith(".parquet") for n in names)
        assert any(n.endswith(".metadata.json") for n in names)
        assert not (bench.settings.home_path / "warehouse").exists()
        assert not list(bench.settings.home_path.rglob("*.parquet"))
        bench.lake().catalog.engine.dispose()  # type: ignore[attr-defined]
