"""Each feed's data-quality status and freshness in the catalog and the feed's details, as a
consumer sees them over HTTP, by the hub's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.hub import LiveHub, send
from tests.api.lake import FEED
from warehouse.control import session_scope
from warehouse.models import LoadRecord
from warehouse.quality_ledger import keep_batch_quality

# The flow feed's one source, loaded for the hour ending at END, with 2 of 100 rows quarantined.
END = datetime(2026, 11, 22, 4, tzinfo=UTC)
PERIOD = "2026-11-22 00:00–24:00 Asia/Shanghai"  # the local day END falls in (12:00 in Shanghai)
SUMMARY = {
    "rows_in": 100,
    "rows_good": 98,
    "rows_quarantined": 2,
    "duplicates_dropped": 0,
    "quarantined_by_reason": {"direction: is not one of the allowed values": 2},
    "expectations": [
        {"expectation": "expect_column_values_to_be_in_set", "column": "direction", "success": False, "unexpected": 2}
    ],
    "schema_drift": [],
    "rejected": False,
}


class Clock:
    """The instant both the hub and the consumer's client read (requests are signed by it)."""

    def __init__(self, instant: datetime) -> None:
        self.instant = instant

    def __call__(self) -> datetime:
        return self.instant


def load_vehicle_passes_hour(hub: LiveHub) -> None:
    with session_scope(hub.settings.control_url) as session:
        record = LoadRecord(
            batch_id="vehicle_passes/music-square/hour",
            stream="vehicle_passes",
            community_id=hub.settings.community_id,
            window_start=END - timedelta(hours=1),
            window_end=END,
            status="loaded",
            rows_extracted=100,
            rows_loaded=98,
            rows_quarantined=2,
        )
        session.add(record)
        keep_batch_quality(session, record, "vehicle_passes.v1", SUMMARY)


def get(hub: LiveHub, path: str, clock: Clock) -> dict[str, Any]:
    """A GET signed by the district at the clock's instant (responses are signed by the real clock)."""
    response = send(hub.signed(path, hub.identities["district"], created=clock()))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def catalog_quality(hub: LiveHub, clock: Clock) -> dict[str, Any]:
    (entry,) = get(hub, "/v1/feeds", clock)["feeds"]
    quality: dict[str, Any] = entry["quality"]
    return quality


def test_catalog_and_feed_detail_carry_quality_status_and_freshness(fresh_hub: LiveHub) -> None:
    clock = Clock(END + timedelta(minutes=30))
    fresh_hub.app.state.now = clock
    # Its source was never loaded: not yet connected (issue 19), not failing; the period stated.
    assert catalog_quality(fresh_hub, clock) == {
        "status": "not_connected",
        "freshness_seconds": None,
        "checked_at": clock().isoformat(),
        "period": PERIOD,
    }
    load_vehicle_passes_hour(fresh_hub)
    clock.instant += timedelta(seconds=10)  # the status computed 10 s ago stands
    assert catalog_quality(fresh_hub, clock)["freshness_seconds"] is None

    clock.instant = END + timedelta(minutes=45)  # past the 30 s the hub reuses a status for
    quality = catalog_quality(fresh_hub, clock)
    assert quality == {
        "status": "ok",
        "freshness_seconds": 45 * 60,
        "checked_at": clock().isoformat(),
        "period": PERIOD,
    }
    assert get(fresh_hub, f"/v1/feeds/{FEED}", clock)["quality"] == quality

    # Five hours without a new hourly window: more than four windows, the feed is stale.
    clock.instant = END + timedelta(hours=5)
    assert catalog_quality(fresh_hub, clock) == {
        "status": "stale",
        "freshness_seconds": 5 * 3600,
        "checked_at": clock().isoformat(),
        "period": PERIOD,
    }
