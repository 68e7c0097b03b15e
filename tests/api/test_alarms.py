"""`/v1/alarms?since=`: the caller's published `safety.alarms` rows, oldest first; an empty
list while the feed is not in the catalog or not granted (the same answer either way).

The tests replace the catalog's `safety.alarms` definition and grants in the running hub's
state with small fixed ones (building level for the district only) and publish fixture
partitions the way the publisher does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from api.alarms import ALARM_FEED
from privacy.policy import FeedGrant
from schemas.feeds import Feed
from tests.api.hub import LiveHub
from tests.api.lake import COMMUNITY, publish_table

ALARMS = Feed.model_validate(
    {
        "name": ALARM_FEED,
        "version": 1,
        "title": {"zh": "告警", "en": "Alarms"},
        "description": {"zh": "告警及其生命周期", "en": "Alarms with their lifecycle"},
        "mart": "mart_safety_alarms",
        "sources": ["fence_events"],
        "cadence": "realtime",
        "partition_by": ["community_id", "day"],
        "order_by": ["raised_at", "alarm_id"],
        "fields": [
            {"name": "community_id", "type": "string", "description": {"zh": "小区", "en": "Community"}},
            {"name": "day", "type": "date", "description": {"zh": "日期", "en": "Day"}},
            {"name": "alarm_id", "type": "string", "description": {"zh": "告警编号", "en": "Alarm id"}},
            {"name": "category", "type": "string", "description": {"zh": "类别", "en": "Category"}},
            {"name": "state", "type": "string", "description": {"zh": "状态", "en": "Lifecycle state"}},
            {"name": "raised_at", "type": "timestamp", "description": {"zh": "发生时间", "en": "Raised at"}},
            {"name": "building", "type": "string", "description": {"zh": "楼栋", "en": "Building"}},
            {"name": "unit", "type": "string", "description": {"zh": "单元", "en": "Unit"}},
        ],
    }
)
BUILDING_LEVEL = ["community_id", "day", "alarm_id", "category", "state", "raised_at", "building"]
SCHEMA = pa.schema(
    [
        *(("community_id", pa.string()), ("day", pa.date32()), ("alarm_id", pa.string())),
        *(("category", pa.string()), ("state", pa.string())),
        *(("raised_at", pa.timestamp("us", tz="UTC")), ("building", pa.string())),
    ]
)


def alarm_rows(day: int, count: int) -> list[dict[str, Any]]:
    start = datetime(2026, 11, day, 8, tzinfo=UTC)
    return [
        {
            "community_id": COMMUNITY,
            "day": start.date(),
            "alarm_id": f"A{day}-{n}",
            "category": "fence",
            "state": "raised",
            "raised_at": start + timedelta(minutes=n),
            "building": f"B{n % 3 + 1}",
        }
        for n in range(count)
    ]


@pytest.fixture
def alarm_hub(fresh_hub: LiveHub) -> Iterator[LiveHub]:
    """A hub whose catalog has a fixed `safety.alarms`, granted at building level to the district only."""
    hub = fresh_hub.app.state.hub
    hub.feeds = {**hub.feeds, ALARM_FEED: ALARMS}
    district = hub.policies["district"]
    grants = {**district.feeds, ALARM_FEED: FeedGrant(fields=dict.fromkeys(BUILDING_LEVEL, "keep"))}
    police = hub.policies["public_security"]
    police_grants = {name: grant for name, grant in police.feeds.items() if name != ALARM_FEED}
    hub.policies = {
        **hub.policies,
        "district": district.model_copy(update={"feeds": grants}),
        "public_security": police.model_copy(update={"feeds": police_grants}),
    }
    yield fresh_hub


def publish_alarms(hub: LiveHub, consumer: str, day: int, count: int, version: int = 1) -> list[dict[str, Any]]:
    rows = alarm_rows(day, count)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    key = f"community_id={COMMUNITY}/day=2026-11-{day:02d}"
    publish_table(hub.settings, hub.signing_key, consumer, ALARM_FEED, key, version, table)
    return [{**row, "day": row["day"].isoformat(), "raised_at": row["raised_at"].isoformat()} for row in rows]


def test_no_alarm_feed_in_the_catalog_is_an_empty_list(live_hub: LiveHub) -> None:
    with live_hub.client("district") as client:
        alarms, cursor = client.alarms()
        assert alarms == []
        assert client.alarms(since=cursor) == ([], cursor)


def test_alarms_are_served_oldest_first_and_followed_by_cursor(alarm_hub: LiveHub) -> None:
    first = publish_alarms(alarm_hub, "district", 20, 3)
    second = publish_alarms(alarm_hub, "district", 21, 2)
    with alarm_hub.client("district") as client:
        page, cursor = client.alarms(limit=4)
        assert page == [*first, *second][:4]
        rest, cursor = client.alarms(since=cursor)
        assert rest == second[1:]
        assert client.alarms(since=cursor) == ([], cursor)
        third = publish_alarms(alarm_hub, "district", 22, 1)
        assert client.alarms(since=cursor)[0] == third


def test_a_consumer_not_granted_alarms_gets_the_same_empty_list(alarm_hub: LiveHub) -> None:
    # Even with alarm partitions of its own in the lake, a policy that does not grant the feed
    # serves nothing; and the district's alarms never show up for anyone else.
    publish_alarms(alarm_hub, "district", 20, 3)
    publish_alarms(alarm_hub, "public_security", 20, 3)
    with alarm_hub.client("public_security") as client:
        assert client.alarms()[0] == []
    with alarm_hub.client("open_data") as client:
        assert client.alarms()[0] == []
