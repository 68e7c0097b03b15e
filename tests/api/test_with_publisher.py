"""The real pipeline's publisher, then the API and `pull_feed`: what the publisher writes is
served, verifies, and arrives whole."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

import pipeline
from api.app import create_app
from api.client import HubClient
from api.consumers import register_consumer
from api.pull import pull_feed
from kernel.settings import Settings
from tests.api.hub import ServerThread, public_pem
from tests.api.lake import FEED
from warehouse.control import session_scope
from warehouse.models import Partition


def test_published_partitions_are_served_verified_and_pulled_whole(hub: Settings, tmp_path: Path) -> None:
    start, end = pipeline.local_day_window(hub, date(2026, 11, 20))
    assert pipeline.run_window(hub, "vehicle_passes", start, end)["published"] > 0
    with session_scope(hub.control_url) as session:
        published = {
            (p.partition_key, p.rows)
            for p in session.execute(select(Partition).where(Partition.consumer == "district")).scalars()
        }
    private = Ed25519PrivateKey.generate()
    key_id = register_consumer(hub, "district", public_pem(private))
    with ServerThread(create_app(hub)) as server, HubClient(server.url, key_id, private) as client:
        result = pull_feed(client, FEED, tmp_path)
        rows, _ = client.records_ndjson(FEED, limit=5)
        detail = client.feed(FEED)
    stored = {
        (str(path.parent.relative_to(tmp_path / FEED)), pq.read_metadata(path).num_rows)
        for path in (tmp_path / FEED).rglob("part-0.parquet")
    }
    assert stored == published and result.rows == sum(n for _, n in published)
    assert rows and "hour_start" in rows[0]
    # The latest release's de-identification report (issue 16), as signed into its manifest.
    report = detail["deidentification"]
    assert report["kind"] == "aggregate" and report["legal_basis"] and report["fields"]
    assert 0 <= report["max_risk"] <= 1 and report["suppression_rate"] >= 0
