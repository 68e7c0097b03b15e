"""A man in the middle on loopback alters, replays or withholds the hub's responses; the
client refuses everything that does not verify, and retries what is merely unavailable."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.client import verify_partition, verify_response
from api.records import Cursor
from kernel.errors import IntegrityError, RetriableError
from privacy.jws import sign_json
from privacy.keys import SigningKey
from tests.api.hub import LiveHub, send
from tests.api.lake import FEED
from tests.api.proxy import (
    Answer,
    Headers,
    TamperingProxy,
    add_header,
    flip_last_body_byte,
    replace_header,
    set_status,
)

RECORDS = f"/v1/feeds/{FEED}/records"


def flip_signature(value: str) -> str:
    """Change one character inside the base64 of a `label=:...:` signature."""
    index = value.index(":") + 8
    return value[:index] + ("A" if value[index] != "A" else "B") + value[index + 1 :]


def body_with_fresh_digest(status: int, headers: Headers, body: bytes) -> Answer:
    """Alter the body and recompute Content-Digest to match: the signature still covers the old one."""
    body = body.replace(b'"entries":', b'"entries":9')
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    return status, [(n, digest if n.lower() == "content-digest" else v) for n, v in headers], body


def test_untouched_traffic_through_the_proxy_verifies(live_hub: LiveHub, proxy: TamperingProxy) -> None:
    with live_hub.client("district", url=proxy.url) as client:
        assert client.catalog()[0]["name"] == FEED
        rows, _ = client.records_ndjson(FEED, limit=2)
    assert len(rows) == 2


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(flip_last_body_byte, id="body"),
        pytest.param(body_with_fresh_digest, id="body-and-digest"),
        pytest.param(replace_header("Signature", flip_signature), id="signature"),
        pytest.param(replace_header("Signature-Input", lambda v: v.replace('"content-type" ', "")), id="input"),
        pytest.param(replace_header("Neuron-Next-Cursor", lambda v: Cursor(0, 0).encode()), id="cursor"),
        pytest.param(replace_header("Content-Type", lambda v: "application/json"), id="content-type"),
        pytest.param(add_header("Neuron-Partition", "community_id=elsewhere"), id="added-header"),
        pytest.param(set_status(203), id="status"),
    ],
)
def test_altered_ndjson_response_is_refused(live_hub: LiveHub, proxy: TamperingProxy, tamper: Any) -> None:
    proxy.tamper = tamper
    with live_hub.client("district", url=proxy.url) as client, pytest.raises(IntegrityError):
        client.records_ndjson(FEED, limit=2)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(flip_last_body_byte, id="body"),
        pytest.param(replace_header("Neuron-Partition-Version", lambda v: "7"), id="version"),
        pytest.param(replace_header("Neuron-Manifest", lambda v: v[:-3] + "AAA"), id="manifest"),
    ],
)
def test_altered_partition_is_refused(live_hub: LiveHub, proxy: TamperingProxy, tamper: Any) -> None:
    proxy.tamper = tamper
    with live_hub.client("district", url=proxy.url) as client, pytest.raises(IntegrityError):
        client.next_partition(FEED, None)


def test_refusals_are_verified_too(live_hub: LiveHub, proxy: TamperingProxy) -> None:
    # A forged 404 would make a consumer believe its feed was withdrawn.
    proxy.tamper = lambda status, headers, body: (404, headers, b'{"detail":"not found"}')
    with live_hub.client("district", url=proxy.url) as client, pytest.raises(IntegrityError):
        client.feed(FEED)


def test_an_earlier_response_replayed_for_a_new_request_is_refused(live_hub: LiveHub, proxy: TamperingProxy) -> None:
    with live_hub.client("district", url=proxy.url) as client:
        client.records_ndjson(FEED, limit=2)
        proxy.replay = proxy.recorded[-1]  # a genuine, hub-signed answer, but to another request
        with pytest.raises(IntegrityError):
            client.records_ndjson(FEED, limit=2)


def test_jwks_fetched_on_first_use_must_vouch_for_itself(live_hub: LiveHub, proxy: TamperingProxy) -> None:
    with live_hub.client("district", url=proxy.url, jwks=None) as client:
        assert client.jwks == live_hub.jwks
    proxy.tamper = replace_header("Signature", flip_signature)
    with live_hub.client("district", url=proxy.url, jwks=None) as client, pytest.raises(IntegrityError):
        client.catalog()


def test_unavailable_hub_is_retried_politely(live_hub: LiveHub, proxy: TamperingProxy) -> None:
    proxy.unavailable = 2  # two 503s with Retry-After: 0, then through to the hub
    with live_hub.client("district", url=proxy.url, backoff=0) as client:
        assert client.catalog()[0]["name"] == FEED
    assert proxy.forwarded == 1


def test_hub_still_unavailable_after_retries_is_retriable(live_hub: LiveHub, proxy: TamperingProxy) -> None:
    proxy.unavailable = 10
    with live_hub.client("district", url=proxy.url, retries=2, backoff=0) as client, pytest.raises(RetriableError):
        client.catalog()
    assert proxy.unavailable == 7


def test_dropped_connections_are_retried_then_retriable(live_hub: LiveHub, proxy: TamperingProxy) -> None:
    proxy.cut_after = 0
    with live_hub.client("district", url=proxy.url, retries=1, backoff=0) as client, pytest.raises(RetriableError):
        client.catalog()


def _genuine(live_hub: LiveHub, params: dict[str, str]) -> requests.Response:
    response = send(live_hub.signed(RECORDS, live_hub.identities["district"], params))
    verify_response(response, live_hub.jwks)
    return response


def test_verification_function_refuses_a_modified_response(live_hub: LiveHub) -> None:
    response = _genuine(live_hub, {"limit": "1"})
    response._content = response.content.replace(b"music-square", b"music-squarf")
    with pytest.raises(IntegrityError):
        verify_response(response, live_hub.jwks)
    response = _genuine(live_hub, {"limit": "1"})
    response.headers["Signature"] = flip_signature(response.headers["Signature"])
    with pytest.raises(IntegrityError):
        verify_response(response, live_hub.jwks)
    response = _genuine(live_hub, {"limit": "1"})
    with pytest.raises(IntegrityError):
        verify_response(response, {"keys": []})  # a key the client does not trust


def _manifest_of(response: requests.Response, key: SigningKey, **changes: Any) -> str:
    payload = json.loads(base64.urlsafe_b64decode(response.headers["Neuron-Manifest"].split(".")[1] + "=="))
    return sign_json({**payload, **changes}, key)


def test_partition_must_match_its_signed_manifest(live_hub: LiveHub) -> None:
    response = _genuine(live_hub, {"format": "parquet"})
    assert verify_partition(response, FEED, "district", live_hub.jwks).rows == 7
    # Signed by the hub, but saying something else than the bytes and headers do.
    changed: list[dict[str, Any]] = [
        {"rows": 8},
        {"sha256": "0" * 64},
        {"feed": "env.air_quality_hourly"},
        {"consumer": "public_security"},
        {"partition": "community_id=music-square/day=2026-11-22"},
        {"version": 2},
        {"schema": [{"name": "entries", "type": "int64"}]},
    ]
    for changes in changed:
        response.headers["Neuron-Manifest"] = _manifest_of(response, live_hub.signing_key, **changes)
        with pytest.raises(IntegrityError):
            verify_partition(response, FEED, "district", live_hub.jwks)
    # Signed under the hub's key id, but by a key that is not the hub's.
    impostor = replace(live_hub.signing_key, private=Ed25519PrivateKey.generate())
    response.headers["Neuron-Manifest"] = _manifest_of(response, impostor)
    with pytest.raises(IntegrityError):
        verify_partition(response, FEED, "district", live_hub.jwks)


def test_a_streamed_partition_altered_in_transit_is_not_kept(
    live_hub: LiveHub, proxy: TamperingProxy, tmp_path: Path
) -> None:
    with live_hub.client("district") as client:
        changes, _ = client.changes(FEED)
    dest = tmp_path / "partition.parquet"
    proxy.tamper = flip_last_body_byte
    with live_hub.client("district", url=proxy.url, jwks=live_hub.jwks) as client:
        for change in changes:
            with pytest.raises(IntegrityError):
                client.download_partition(FEED, change["id"], dest)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary left behind
