"""Records: ndjson pages and whole Parquet partitions, followed by cursor in publication order."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from api.client import HubClient, PartitionDownload, verify_response
from privacy.jws import verify_json
from tests.api.hub import LiveHub, send
from tests.api.lake import FEED, Published, as_json

RECORDS = f"/v1/feeds/{FEED}/records"


def expected_rows(published: list[Published]) -> list[dict[str, Any]]:
    return [row for p in published for row in as_json(p.rows)]


def read_all_pages(client: HubClient, cursor: str | None = None, limit: int | None = None) -> tuple[list[Any], str]:
    """Every page up to the end; returns the pages' rows and the final cursor."""
    pages: list[list[dict[str, Any]]] = []
    while True:
        rows, next_cursor = client.records_ndjson(FEED, cursor=cursor, limit=limit)
        if not rows:
            assert next_cursor == cursor or cursor is None  # caught up: the same cursor back
            return pages, next_cursor
        pages.append(rows)
        cursor = next_cursor


def read_all_partitions(client: HubClient, cursor: str | None = None) -> tuple[list[PartitionDownload], str]:
    downloads = []
    while True:
        download, next_cursor = client.next_partition(FEED, cursor)
        if download is None:
            assert next_cursor == cursor or cursor is None
            return downloads, next_cursor
        downloads.append(download)
        cursor = next_cursor


def test_ndjson_pages_serve_every_latest_row_once_and_skip_superseded(live_hub: LiveHub) -> None:
    with live_hub.client("district") as client:
        pages, cursor = read_all_pages(client, limit=5)
        assert [len(page) for page in pages] == [5, 5, 5, 2]  # 7 + 6 + 4 rows, pages cross partitions
        assert [row for page in pages for row in page] == expected_rows(live_hub.latest("district"))
        # Version 1 of 2026-11-20 (entries 1000+) was superseded by version 2 (entries 2000+).
        assert not any(row["day"] == "2026-11-20" and row["entries"] < 2000 for page in pages for row in page)
        rows, again = client.records_ndjson(FEED, cursor=cursor)
        assert (rows, again) == ([], cursor)


def test_ndjson_default_page_size_and_types(live_hub: LiveHub) -> None:
    with live_hub.client("district") as client:
        rows, _ = client.records_ndjson(FEED)
    assert len(rows) == live_hub.settings.api.default_page_size
    assert rows[0]["hour_start"] == "2026-11-21T00:00:00+00:00"
    assert rows[0]["day"] == "2026-11-21"
    assert isinstance(rows[0]["entries"], int)


def test_each_consumer_gets_its_own_partitions_and_fields(live_hub: LiveHub) -> None:
    with live_hub.client("public_security") as client:
        pages, _ = read_all_pages(client)
    rows = [row for page in pages for row in page]
    assert rows == expected_rows(live_hub.latest("public_security"))
    assert set(rows[0]) == {"community_id", "day", "gate_code", "hour_start", "entries", "exits"}


def test_ndjson_response_is_ndjson_with_a_cursor_header(live_hub: LiveHub) -> None:
    response = send(live_hub.signed(RECORDS, live_hub.identities["district"], {"limit": "1"}))
    verify_response(response, live_hub.jwks)
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["neuron-next-cursor"]
    assert response.text.count("\n") == 1


def test_parquet_serves_one_verified_partition_per_response(live_hub: LiveHub) -> None:
    with live_hub.client("district") as client:
        downloads, cursor = read_all_partitions(client)
        assert client.next_partition(FEED, cursor) == (None, cursor)
    latest = live_hub.latest("district")
    assert [(d.partition_key, d.version) for d in downloads] == [(p.partition_key, p.version) for p in latest]
    for download, published in zip(downloads, latest, strict=True):
        manifest = verify_json(download.manifest_jws, live_hub.jwks)
        assert manifest["sha256"] == hashlib.sha256(download.data).hexdigest()
        table = pq.read_table(pa.BufferReader(download.data))
        assert as_json(table.to_pylist()) == as_json(published.rows)


def test_parquet_caught_up_is_204_with_the_same_cursor(live_hub: LiveHub) -> None:
    with live_hub.client("district") as client:
        _, cursor = read_all_partitions(client)
    response = send(live_hub.signed(RECORDS, live_hub.identities["district"], {"format": "parquet", "cursor": cursor}))
    verify_response(response, live_hub.jwks)
    assert response.status_code == 204
    assert response.headers["neuron-next-cursor"] == cursor


def test_new_versions_reach_a_consumer_that_had_caught_up(fresh_hub: LiveHub) -> None:
    with fresh_hub.client("district") as client:
        _, cursor = read_all_pages(client)
        republished = fresh_hub.publish("district", date(2026, 11, 20), 3, 2)
        pages, _ = read_all_pages(client, cursor)
        assert [row for page in pages for row in page] == as_json(republished.rows)
        downloads, _ = read_all_partitions(client)
    assert [(d.partition_key[-10:], d.version) for d in downloads] == [
        ("2026-11-21", 1),
        ("2026-11-22", 1),
        ("2026-11-20", 3),
    ]


def test_partition_with_columns_no_longer_granted_is_withheld(fresh_hub: LiveHub) -> None:
    # public_security's policy does not grant charges_fen: as if the policy had been narrowed
    # after this partition was published. Serving stops before it, and the cursor stays.
    wide = ["community_id", "day", "gate_code", "hour_start", "entries", "exits", "charges_fen"]
    fresh_hub.publish("public_security", date(2026, 11, 23), 1, 2, fields=wide)
    after = fresh_hub.publish("public_security", date(2026, 11, 24), 1, 2)
    with fresh_hub.client("public_security") as client:
        pages, cursor = read_all_pages(client)
        assert [row for page in pages for row in page] == expected_rows(fresh_hub.latest("public_security")[:2])
        downloads, _ = read_all_partitions(client)
        assert len(downloads) == 2
        # Re-published under the policy: the withheld version is superseded and the feed flows again.
        fixed = fresh_hub.publish("public_security", date(2026, 11, 23), 2, 2)
        pages, _ = read_all_pages(client, cursor)
    assert [row for page in pages for row in page] == expected_rows([after, fixed])


def test_a_file_that_does_not_match_its_sha256_is_not_served(fresh_hub: LiveHub) -> None:
    victim = fresh_hub.settings.lake_path / "district" / FEED / fresh_hub.latest("district")[0].partition_key
    path = victim / "v1.parquet"
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    response = send(fresh_hub.signed(RECORDS, fresh_hub.identities["district"]))
    verify_response(response, fresh_hub.jwks)
    assert (response.status_code, response.json()) == (500, {"detail": "internal error"})
