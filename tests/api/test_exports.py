"""The change log, partitions by id, and record formats (csv, and the standard formats a feed
is not offered in yet), as consumers see them over HTTP."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from api.client import HubRefused, verify_response
from api.records import Cursor
from tests.api.hub import FLOW_FIELDS, LiveHub, send
from tests.api.lake import FEED, as_json

RECORDS = f"/v1/feeds/{FEED}/records"
CHANGES = f"/v1/feeds/{FEED}/changes"


def test_change_log_lists_the_latest_versions_in_publication_order(live_hub: LiveHub) -> None:
    with live_hub.client("district") as client:
        changes, cursor = client.changes(FEED)
        assert [(c["partition"], c["version"], c["supersedes"], c["rows"]) for c in changes] == [
            (p.partition_key, p.version, p.version - 1 if p.version > 1 else None, len(p.rows))
            for p in live_hub.latest("district")
        ]
        assert cursor == changes[-1]["cursor"]
        assert client.changes(FEED, since=cursor) == ([], cursor)  # caught up: the same cursor back
        # From the middle: only what came after.
        later, _ = client.changes(FEED, since=changes[0]["cursor"])
        assert later == changes[1:]
        limited, next_cursor = client.changes(FEED, limit=1)
        assert limited == changes[:1] and next_cursor == changes[0]["cursor"]


def test_partition_by_id_streams_the_verified_file(live_hub: LiveHub, tmp_path: Path) -> None:
    with live_hub.client("district") as client:
        changes, _ = client.changes(FEED)
        for change, published in zip(changes, live_hub.latest("district"), strict=True):
            dest = tmp_path / f"{change['version']}-{published.seq}.parquet"
            download = client.download_partition(FEED, change["id"], dest, (change["partition"], change["version"]))
            assert download.path == dest and download.rows == len(published.rows)
            assert as_json(pq.read_table(dest).to_pylist()) == as_json(published.rows)
            assert download.manifest["sha256"] == change["sha256"]


def test_a_superseded_version_stays_downloadable_by_its_id(fresh_hub: LiveHub, tmp_path: Path) -> None:
    old = fresh_hub.published[0]  # district 2026-11-20 v1, superseded by v2
    partition_id = fresh_hub.app.state.hub.partition_ids.encode("district", old.seq)
    with fresh_hub.client("district") as client:
        download = client.download_partition(FEED, partition_id, tmp_path / "old.parquet")
    assert (download.partition_key, download.version) == (old.partition_key, 1)


def test_partition_ids_are_opaque_and_bound_to_their_consumer(live_hub: LiveHub, tmp_path: Path) -> None:
    with live_hub.client("public_security") as client:
        theirs, _ = client.changes(FEED)
    ids = live_hub.app.state.hub.partition_ids
    district = live_hub.published[0]
    candidates = [
        theirs[0]["id"],  # a real id, but public_security's
        ids.encode("public_security", district.seq),  # district's partition under another consumer's id
        str(district.seq),  # a bare seq
        theirs[0]["id"][:-1] + ("A" if theirs[0]["id"][-1] != "A" else "B"),  # a forged tag
        "x" * 27,
    ]
    for candidate in candidates:
        response = send(live_hub.signed(f"/v1/feeds/{FEED}/partitions/{candidate}", live_hub.identities["district"]))
        verify_response(response, live_hub.jwks)
        assert (response.status_code, response.json()) == (404, {"detail": "not found"})


def test_csv_pages_follow_the_same_cursor_as_ndjson(live_hub: LiveHub) -> None:
    with live_hub.client("public_security") as client:
        text, cursor = client.records_csv(FEED, limit=3)
        rows, ndjson_cursor = client.records_ndjson(FEED, limit=3)
    assert cursor == ndjson_cursor
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == FLOW_FIELDS  # exactly the granted columns, in the feed's order
    assert [dict(zip(table[0], line, strict=True)) for line in table[1:]] == [
        {k: str(v) for k, v in row.items()} for row in rows
    ]


@pytest.mark.parametrize("fmt", ["ngsi-ld", "viid"])
def test_a_standard_format_the_feed_does_not_offer_is_406_naming_those_it_does(live_hub: LiveHub, fmt: str) -> None:
    response = send(live_hub.signed(RECORDS, live_hub.identities["district"], {"format": fmt}))
    verify_response(response, live_hub.jwks)
    assert response.status_code == 406
    assert response.json() == {"detail": f"feed {FEED} is not offered as {fmt}; it is offered as ndjson, csv, parquet"}


def test_an_unknown_format_is_422(live_hub: LiveHub) -> None:
    response = send(live_hub.signed(RECORDS, live_hub.identities["district"], {"format": "xml"}))
    verify_response(response, live_hub.jwks)
    assert response.status_code == 422
    assert "xml" not in response.text


def test_changes_stop_before_a_partition_no_longer_granted(fresh_hub: LiveHub) -> None:
    wide = [*FLOW_FIELDS, "charges_fen"]
    fresh_hub.publish("public_security", date(2026, 11, 23), 1, 2, fields=wide)
    with fresh_hub.client("public_security") as client:
        changes, cursor = client.changes(FEED)
        assert len(changes) == 2  # the two earlier partitions; not the withheld one, nor anything after it
        ids = fresh_hub.app.state.hub.partition_ids
        withheld = ids.encode("public_security", fresh_hub.published[-1].seq)
        with pytest.raises(HubRefused) as refused:
            client.download_partition(FEED, withheld, Path("/nonexistent/never-written.parquet"))
    assert refused.value.status_code == 404
    assert Cursor.decode(cursor).seq <= fresh_hub.published[-1].seq  # it waits before it


def test_changes_refuse_a_bad_since_and_an_oversized_limit(live_hub: LiveHub) -> None:
    district = live_hub.identities["district"]
    for params, detail in [
        ({"since": "nope"}, "invalid cursor"),
        ({"limit": "1001"}, "limit must be between 1 and 1000"),
    ]:
        response = send(live_hub.signed(CHANGES, district, params))
        verify_response(response, live_hub.jwks)
        assert (response.status_code, response.json()) == (422, {"detail": detail})
