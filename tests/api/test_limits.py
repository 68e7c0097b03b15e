"""Resource limits (OWASP API4, and API6's bulk-export flow): per-consumer rate limits with
429 and Retry-After, a budget for unauthenticated traffic per address, request bodies and
time limits, and streams that do not grow the server's memory with the file.

The hub's clock is a `MovableClock`: buckets refill when a test moves it, never by waiting.
"""

from __future__ import annotations

import hashlib
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import requests
from fastapi import FastAPI

from api.client import HubClient, verify_response
from api.deps import offload
from api.signing import sign_request
from kernel.settings import ApiSettings
from tests.api.hub import Identity, LiveHub, new_identity, running_hub, send
from tests.api.lake import FEED, publish_table
from tests.services import require

FEEDS = "/v1/feeds"


class MovableClock:
    """The hub's clock, moved by the test."""

    def __init__(self) -> None:
        self.instant = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.instant

    def advance(self, seconds: float) -> None:
        self.instant += timedelta(seconds=seconds)


LIMITED = ApiSettings(
    rate_per_second=1,
    rate_burst=3,
    anonymous_rate_per_second=1,
    anonymous_burst=5,
    request_timeout_seconds=0.5,
    max_request_body_bytes=1024,
    stream_chunk_bytes=64 * 1024,
)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def limited_hub(tmp_path: Path, clock: MovableClock) -> Iterator[LiveHub]:
    with running_hub(tmp_path / "hub", options=LIMITED) as hub:
        hub.app.state.now = clock
        yield hub


def signed_at(hub: LiveHub, clock: MovableClock, identity: Identity | None, path: str = FEEDS) -> requests.Response:
    return send(hub.signed(path, identity, created=clock.instant) if identity else hub.signed(path, None))


def test_a_consumer_over_its_rate_gets_429_with_retry_after(limited_hub: LiveHub, clock: MovableClock) -> None:
    district, police = limited_hub.identities["district"], limited_hub.identities["public_security"]
    assert [signed_at(limited_hub, clock, district).status_code for _ in range(3)] == [200, 200, 200]
    refused = signed_at(limited_hub, clock, district)
    verify_response(refused, limited_hub.jwks, now=clock)
    assert (refused.status_code, refused.json(), refused.headers["Retry-After"]) == (
        429,
        {"detail": "rate limit exceeded"},
        "1",
    )
    assert signed_at(limited_hub, clock, police).status_code == 200  # each consumer has its own bucket
    clock.advance(1)
    assert [signed_at(limited_hub, clock, district).status_code for _ in range(2)] == [200, 429]


def test_the_client_waits_as_told_and_then_gets_through(limited_hub: LiveHub, clock: MovableClock) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    identity = limited_hub.identities["district"]
    with HubClient(
        limited_hub.url,
        identity.key_id,
        identity.private_key,
        limited_hub.jwks,
        now=clock,
        sleep=sleep,
        ca=limited_hub.ca,
    ) as c:
        statuses = [len(c.catalog()) for _ in range(5)]
    assert statuses == [1] * 5
    assert waits == [1.0, 1.0]  # the fourth and fifth request each waited Retry-After once


def test_unauthenticated_traffic_spends_the_addresss_budget(limited_hub: LiveHub, clock: MovableClock) -> None:
    # A budget of 5: the fixture's JWKS fetch spent one, probes and refusals spend the rest.
    statuses = [signed_at(limited_hub, clock, None, "/healthz").status_code for _ in range(2)]
    statuses += [signed_at(limited_hub, clock, None, FEEDS).status_code for _ in range(2)]
    assert statuses == [200, 200, 401, 401]
    refused = signed_at(limited_hub, clock, None, "/healthz")
    verify_response(refused, limited_hub.jwks, now=clock)
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "1")
    # An address that has spent its budget is refused before any signature is checked.
    assert signed_at(limited_hub, clock, limited_hub.identities["district"]).status_code == 429
    clock.advance(2)
    assert signed_at(limited_hub, clock, limited_hub.identities["district"]).status_code == 200


def test_request_bodies_are_bounded(limited_hub: LiveHub, clock: MovableClock) -> None:
    identity = limited_hub.identities["district"]
    body = b"x" * 2048
    request = requests.Request("POST", limited_hub.url + FEEDS, data=body).prepare()
    sign_request(request, identity.key_id, identity.private_key, created=clock.instant, body=body)
    response = send(request)
    verify_response(response, limited_hub.jwks, now=clock)
    assert (response.status_code, response.json()) == (413, {"detail": "request body over 1024 bytes"})


def test_a_request_over_its_time_limit_is_503_and_its_work_abandoned(limited_hub: LiveHub, clock: MovableClock) -> None:
    release = threading.Event()
    app: FastAPI = limited_hub.app

    @app.get("/v1/slow-read")
    async def slow_read() -> dict[str, bool]:  # a read that hangs, as a stuck disk would
        return {"done": await offload(release.wait, 30)}

    try:
        response = signed_at(limited_hub, clock, limited_hub.identities["district"], "/v1/slow-read")
        verify_response(response, limited_hub.jwks, now=clock)
        assert (response.status_code, response.json(), response.headers["Retry-After"]) == (
            503,
            {"detail": "request timed out"},
            "1",
        )
    finally:
        release.set()


def big_partition(hub: LiveHub, rows: int) -> tuple[str, int]:
    """A partition of incompressible rows for the district; its id and file size."""
    gates = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(rows)]
    table = pa.table({"community_id": pa.array(["music-square"] * rows), "gate_code": pa.array(gates)})
    seq = publish_table(hub.settings, hub.signing_key, "district", FEED, "community_id=music-square/day=big", 1, table)
    path = next((hub.settings.lake_path / "district" / FEED).glob("**/day=big/v1.parquet"))
    return hub.app.state.hub.partition_ids.encode("district", seq), path.stat().st_size


def test_a_partition_streams_in_bounded_memory(limited_hub: LiveHub, clock: MovableClock, tmp_path: Path) -> None:
    partition_id, size = big_partition(limited_hub, 300_000)
    assert size > 16 * 1024 * 1024
    identity = limited_hub.identities["district"]
    with HubClient(
        limited_hub.url, identity.key_id, identity.private_key, limited_hub.jwks, now=clock, ca=limited_hub.ca
    ) as client:
        tracemalloc.start()
        try:
            download = client.download_partition(FEED, partition_id, tmp_path / "big.parquet")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert download.rows == 300_000
    # Server and client share this process: both together stay within a few chunks.
    assert peak < size / 4, (peak, size)


def test_redis_holds_nonces_and_buckets_for_every_api_process(tmp_path: Path, clock: MovableClock) -> None:
    require(6379, "Redis")
    options = LIMITED.model_copy(update={"redis_url": "redis://127.0.0.1:6379/0"})
    with running_hub(tmp_path / "hub", options=options) as hub:
        hub.app.state.now = clock
        # A consumer of its own: Redis outlives the test, and its buckets are keyed by name.
        caller = new_identity(hub.settings, f"redis-{uuid.uuid4().hex[:8]}", policy="district")
        request = hub.signed(FEEDS, caller, created=clock.instant)
        assert send(request).status_code == 200
        replayed = send(request)
        assert (replayed.status_code, replayed.json()) == (401, {"detail": "nonce already used"})
        assert [signed_at(hub, clock, caller).status_code for _ in range(3)] == [200, 200, 429]
        clock.advance(1)
        assert signed_at(hub, clock, caller).status_code == 200
