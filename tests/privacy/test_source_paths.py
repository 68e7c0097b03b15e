"""No source value forms a path (issue 16, item 7): a record naming another community — or a
crafted one that would climb out of the lake — is quarantined with a reason that names the
field, and the publisher refuses any partition value that is not a safe folder name."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from connectors.base import records_to_raw_batch
from kernel.errors import PublishBlocked
from schemas.feeds import load_feeds
from schemas.validate import validate_batch
from tests.schemas.test_validate import CONTRACT, GOOD
from warehouse.publisher import _partition_key


def outcome(*records: dict[str, Any]) -> Any:
    raw = pa.Table.from_batches([records_to_raw_batch(CONTRACT, list(records))])
    return validate_batch(CONTRACT, raw, community_id=GOOD["community_id"])


@pytest.mark.parametrize("crafted", ["../../etc", "west-lane", "music-square/../district", "", "MUSIC-SQUARE"])
def test_a_record_of_another_community_is_quarantined_naming_the_field(crafted: str) -> None:
    result = outcome(GOOD, {**GOOD, "record_id": "R-other", "community_id": crafted})
    assert result.good.num_rows == 1
    reasons = result.rejected.column("_reason").to_pylist()
    assert reasons == ["community_id: not this hub's community"]
    assert crafted not in reasons[0] or crafted == ""


@pytest.mark.parametrize("value", ["../x", "a/b", "..", ".hidden", "a b", "x\\y", "2026-11-20/../../k"])
def test_the_publisher_refuses_a_partition_value_that_is_not_a_folder_name(value: str) -> None:
    feed = next(f for f in load_feeds().values() if "community_id" in f.partition_by)
    values = {col: "2026-11-20" for col in feed.partition_by} | {"community_id": value}
    with pytest.raises(PublishBlocked, match="not a safe folder name"):
        _partition_key(feed, values)


def test_a_safe_partition_key_is_unchanged() -> None:
    feed = next(f for f in load_feeds().values() if "community_id" in f.partition_by)
    values = {col: "2026-11-20" for col in feed.partition_by} | {"community_id": "music-square"}
    assert "community_id=music-square" in _partition_key(feed, values)
