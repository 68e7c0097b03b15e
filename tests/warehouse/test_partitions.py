"""The publisher's split of mart rows into partitions: groups sorted by key, rows in mart order."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from schemas.feeds import load_feeds
from warehouse.publisher import _partitions


def test_rows_split_by_partition_keep_their_order() -> None:
    feed = load_feeds()["traffic.vehicle_passes"]
    assert feed.partition_by == ["community_id", "day"]
    d1, d2 = date(2026, 11, 20), date(2026, 11, 21)
    mart = pa.table(
        {
            "community_id": ["b", "a", "b", "a", "a", "b"],
            "day": [d1, d2, d1, d1, d2, d2],
            "n": [0, 1, 2, 3, 4, 5],
        }
    )
    split = [(key, table.column("n").to_pylist()) for key, table in _partitions(feed, mart)]
    assert split == [
        ({"community_id": "a", "day": d1}, [3]),
        ({"community_id": "a", "day": d2}, [1, 4]),
        ({"community_id": "b", "day": d1}, [0, 2]),
        ({"community_id": "b", "day": d2}, [5]),
    ]
    assert _partitions(feed, mart.slice(0, 0)) == []


def test_a_partition_in_one_run_is_the_same_rows_as_a_scattered_one() -> None:
    feed = load_feeds()["traffic.vehicle_passes"]
    d1, d2 = date(2026, 11, 20), date(2026, 11, 21)
    mart = pa.table({"community_id": ["a"] * 5, "day": [d1, d1, d1, d2, d2], "n": [0, 1, 2, 3, 4]})
    split = [(key["day"], table.column("n").to_pylist()) for key, table in _partitions(feed, mart)]
    assert split == [(d1, [0, 1, 2]), (d2, [3, 4])]
