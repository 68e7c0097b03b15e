"""System 5 over the intercom vendor's open API: numbered pages inside the vendor's
envelope, image fields never ingested, the vendor's error codes mapped to the hub's errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

import pipeline
from connectors.intercom import HttpSource
from connectors.registry import make_stream
from kernel.errors import BatchRejected, RetriableError, SourceAuthError
from privacy.keys import HubKeys
from schemas.contract import EXTRA_COLUMN
from simulator.vendors_intercom import IMAGE_FIELDS, IntercomFaults, IntercomVendor
from simulator.vendors_server import start_intercom_api
from tests.connectors.hub_sources import hub_settings
from warehouse import vault

CST = timezone(timedelta(hours=8))
SINCE, UNTIL = datetime(2026, 11, 20, tzinfo=CST), datetime(2026, 11, 21, tzinfo=CST)


def source(url: str, token: str = "t", **options: object) -> HttpSource:
    return HttpSource(base_url=url, token=token, **{"page_size": 100, "max_retries": 2, **options})  # type: ignore[arg-type]


def test_every_record_is_read_through_the_numbered_pages(tmp_path: Path) -> None:
    vendor = IntercomVendor(faults=IntercomFaults.none())
    with start_intercom_api(vendor, "t") as api:
        settings = hub_settings(tmp_path, intercom=source(api.url))
        table = pa.Table.from_batches(list(make_stream("camera_health", settings).extract(SINCE, UNTIL)))
        requests = api.request_count
    expected = vendor.records_updated_between("camera-health", SINCE, UNTIL)
    assert table.column("report_id").to_pylist() == [r["reportId"] for r in expected]
    assert requests == -(-len(expected) // 100)


def test_pictures_never_reach_the_vault(tmp_path: Path) -> None:
    vendor = IntercomVendor(faults=IntercomFaults(added_field=True))
    with start_intercom_api(vendor, "t") as api:
        settings = hub_settings(tmp_path, intercom=source(api.url))
        calls = pa.Table.from_batches(list(make_stream("intercom_calls", settings).extract(SINCE, UNTIL)))
        with pytest.raises(BatchRejected):  # the added field fails the window (freeze)
            pipeline.run_window(settings, "video_events", SINCE, UNTIL)
    served = vendor.records_updated_between("events", SINCE, UNTIL)
    pictures = {r[f] for r in served for f in IMAGE_FIELDS if f in r}
    assert pictures and calls.column(EXTRA_COLUMN).null_count == calls.num_rows
    batch = pipeline.batch_id_for("video_events", settings.community_id, SINCE, UNTIL)
    raw = str(vault.read(settings.vault_dir, HubKeys.load(settings), batch).to_pylist())
    assert not [p for p in pictures if p in raw]
    assert not any(name in raw for name in IMAGE_FIELDS)
    assert "face_feature" in raw  # an unknown field is named (drift), its value never kept
    assert not any(r["faceFeature"] in raw for r in served)


def test_late_reviews_are_read_in_the_window_they_were_updated(tmp_path: Path) -> None:
    vendor = IntercomVendor(faults=IntercomFaults(late_rate=0.5))
    with start_intercom_api(vendor, "t") as api:
        settings = hub_settings(tmp_path, intercom=source(api.url))
        table = pa.Table.from_batches(list(make_stream("video_events", settings).extract(SINCE, UNTIL)))
    confirmed = [s for s, st in zip(table["start_time"].to_pylist(), table["status"].to_pylist(), strict=True)]
    assert any(datetime.fromisoformat(s) < SINCE for s in confirmed)  # yesterday's events, reviewed today


def test_a_refused_token_is_fatal_and_an_overloaded_gateway_retriable(tmp_path: Path) -> None:
    vendor = IntercomVendor(faults=IntercomFaults(error_every=1))
    with start_intercom_api(IntercomVendor(), "right") as api:
        settings = hub_settings(tmp_path / "a", intercom=source(api.url, token="wrong-secret"))
        with pytest.raises(SourceAuthError, match="credentials refused") as caught:
            list(make_stream("intercom_calls", settings).extract(SINCE, UNTIL))
        assert "wrong-secret" not in str(caught.value)
    with start_intercom_api(vendor, "t") as api:
        settings = hub_settings(tmp_path / "b", intercom=source(api.url, max_retries=1))
        with pytest.raises(RetriableError):
            list(make_stream("intercom_calls", settings).extract(SINCE, UNTIL))
