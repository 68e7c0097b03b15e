"""The HTTP connector family and the vehicle-passes stream, over the simulated vendor API."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from connectors.base import Stream
from connectors.registry import make_stream
from kernel.errors import RetriableError, SourceAuthError
from kernel.settings import HttpSource, Settings
from schemas.contract import EXTRA_COLUMN
from simulator.parking import Faults, ParkingSimulator
from simulator.server import start_parking_api

CST = timezone(timedelta(hours=8))
SINCE, UNTIL = datetime(2026, 11, 20, tzinfo=CST), datetime(2026, 11, 20, 12, tzinfo=CST)


def source(url: str, token: str = "t", **options: object) -> HttpSource:
    values: dict[str, object] = {"page_size": 50, "timeout_seconds": 2, **options}
    return HttpSource(base_url=url, token=token, **values)  # type: ignore[arg-type]


def extract_all(stream: Stream) -> pa.Table:
    return pa.Table.from_batches(list(stream.extract(SINCE, UNTIL)))


def test_reads_every_record_of_the_window_through_the_pages() -> None:
    sim = ParkingSimulator(seed=3)
    with start_parking_api(sim, token="t") as api:
        table = extract_all(make_stream("vehicle_passes", Settings(parking=source(api.url))))
        pages = api.request_count
    expected = sim.records_updated_between(SINCE, UNTIL)
    assert table.column("record_id").to_pylist() == [r["record_id"] for r in expected]
    assert pages == -(-len(expected) // 50)  # ceil: bounded pages of 50
    assert table.schema.field("plate_no").type == pa.string()
    assert table.column(EXTRA_COLUMN).null_count == table.num_rows  # the contract knows every field


def test_transient_errors_are_retried_and_nothing_is_lost() -> None:
    sim = ParkingSimulator(seed=3, faults=Faults(error_every=3))
    with start_parking_api(sim, token="t") as api:
        table = extract_all(make_stream("vehicle_passes", Settings(parking=source(api.url))))
    assert table.num_rows == len(sim.records_updated_between(SINCE, UNTIL))


def test_a_slow_page_times_out_and_is_retried() -> None:
    sim = ParkingSimulator(seed=3, faults=Faults(slow_every=7, slow_seconds=1.5))
    with start_parking_api(sim, token="t") as api:
        stream = make_stream("vehicle_passes", Settings(parking=source(api.url, timeout_seconds=0.5)))
        table = extract_all(stream)
    assert table.num_rows == len(sim.records_updated_between(SINCE, UNTIL))


def test_refused_credentials_are_fatal_and_say_so_without_the_token() -> None:
    with (
        start_parking_api(ParkingSimulator(seed=3), token="right") as api,
        pytest.raises(SourceAuthError, match="credentials refused") as caught,
    ):
        extract_all(make_stream("vehicle_passes", Settings(parking=source(api.url, token="wrong-secret"))))
    assert "wrong-secret" not in str(caught.value)


def test_an_unreachable_vendor_is_retriable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    stream = make_stream("vehicle_passes", Settings(parking=source(f"http://127.0.0.1:{port}", max_retries=1)))
    with pytest.raises(RetriableError, match="no answer"):
        extract_all(stream)
