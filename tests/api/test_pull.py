"""`pull_feed`: an incremental, verified, resumable copy of a feed into a folder."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from api.pull import STATE_DIR, partition_path, pull_feed
from kernel.errors import IntegrityError, RetriableError
from tests.api.hub import LiveHub
from tests.api.lake import FEED, as_json
from tests.api.proxy import TamperingProxy, flip_last_body_byte


def stored_rows(out_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The rows of every stored partition file (the hub's own bytes, kept as evidence), by partition key."""
    root = out_dir / STATE_DIR / FEED
    return {
        str(path.parent.relative_to(root)): as_json(pq.read_table(path).to_pylist())
        for path in sorted(root.rglob("v*.parquet"))
    }


def published_rows(hub: LiveHub, consumer: str) -> dict[str, list[dict[str, Any]]]:
    return {p.partition_key: as_json(p.rows) for p in hub.latest(consumer)}


def test_pull_stores_the_latest_version_of_every_partition(fresh_hub: LiveHub, tmp_path: Path) -> None:
    with fresh_hub.client("district") as client:
        result = pull_feed(client, FEED, tmp_path)
        assert stored_rows(tmp_path) == published_rows(fresh_hub, "district")
        assert result.partitions == [f"{p.partition_key}@v{p.version}" for p in fresh_hub.latest("district")]
        assert result.rows == 17
        state = json.loads((tmp_path / STATE_DIR / f"{FEED}.json").read_text())
        assert state["cursor"] == result.cursor
        again = pull_feed(client, FEED, tmp_path)  # nothing new: nothing written
    assert (again.partitions, again.rows, again.cursor) == ([], 0, result.cursor)


def test_the_pulled_feed_is_one_dataset_pandas_and_pyarrow_read_directly(fresh_hub: LiveHub, tmp_path: Path) -> None:
    with fresh_hub.client("district") as client:
        pull_feed(client, FEED, tmp_path)
    published = [r for p in fresh_hub.latest("district") for r in as_json(p.rows)]
    frame = pd.read_parquet(tmp_path / FEED)
    assert len(frame) == len(published) and sorted(frame["entries"]) == sorted(r["entries"] for r in published)
    table = pq.read_table(tmp_path / FEED)
    assert sorted(map(str, table.column("day").to_pylist())) == sorted(r["day"] for r in published)
    assert set(table.column_names) == set(published[0])


def test_newer_version_replaces_the_stored_file(fresh_hub: LiveHub, tmp_path: Path) -> None:
    with fresh_hub.client("district") as client:
        pull_feed(client, FEED, tmp_path)
        republished = fresh_hub.publish("district", date(2026, 11, 21), 2, 3)
        result = pull_feed(client, FEED, tmp_path)
    assert result.partitions == [f"{republished.partition_key}@v2"]
    assert stored_rows(tmp_path) == published_rows(fresh_hub, "district")
    assert len(stored_rows(tmp_path)[republished.partition_key]) == 3


def test_interrupted_pull_resumes_and_ends_with_exactly_the_published_rows(fresh_hub: LiveHub, tmp_path: Path) -> None:
    with TamperingProxy(fresh_hub.url) as proxy:
        fresh_hub.admit(proxy.url)
        proxy.cut_after = 2  # the change log and the first partition get through, then the line goes dead
        client = fresh_hub.client("district", url=proxy.url, retries=1, backoff=0)
        with client, pytest.raises(RetriableError):
            pull_feed(client, FEED, tmp_path)
    first = fresh_hub.latest("district")[0]
    assert list(stored_rows(tmp_path)) == [first.partition_key]
    with fresh_hub.client("district") as client:
        resumed = pull_feed(client, FEED, tmp_path)
    assert resumed.partitions == [f"{p.partition_key}@v{p.version}" for p in fresh_hub.latest("district")[1:]]
    assert stored_rows(tmp_path) == published_rows(fresh_hub, "district")


def test_a_partition_that_fails_verification_is_not_written(fresh_hub: LiveHub, tmp_path: Path) -> None:
    with TamperingProxy(fresh_hub.url) as proxy:
        fresh_hub.admit(proxy.url)
        proxy.tamper = flip_last_body_byte
        with fresh_hub.client("district", url=proxy.url) as client, pytest.raises(IntegrityError):
            pull_feed(client, FEED, tmp_path)
    assert not (tmp_path / FEED).exists()
    assert not (tmp_path / STATE_DIR / f"{FEED}.json").exists()


@pytest.mark.parametrize("key", ["../escape", "a//b", "/etc/passwd", "day=1/..", "a\\b"])
def test_partition_keys_cannot_escape_the_folder(tmp_path: Path, key: str) -> None:
    with pytest.raises(IntegrityError):
        partition_path(tmp_path, FEED, key)
