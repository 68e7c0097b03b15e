"""Request authentication over real HTTP: every refusal is a signed 401 with a short reason."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver
from http_message_signatures.algorithms import ED25519

from api.client import verify_response
from api.consumers import revoke_consumer, revoke_key
from tests.api.hub import WINDOW, Identity, LiveHub, new_identity, send
from tests.api.lake import FEED

FEEDS = "/v1/feeds"
COMPONENTS = ("@method", "@authority", "@path", "@query")
Clock = Callable[[datetime], None]


def assert_refused(live_hub: LiveHub, response: requests.Response, reason: str) -> None:
    """A signed 401 whose body says `reason` and quotes nothing the request sent."""
    verify_response(response, live_hub.jwks)
    assert (response.status_code, response.json()) == (401, {"detail": reason})
    sent = response.request.headers
    for name in ("Signature", "Signature-Input"):
        for fragment in (sent.get(name) or "").replace('"', " ").replace(";", " ").split():
            if len(fragment) > 12:  # long enough to be a key id, a nonce or a signature
                assert fragment not in response.text


def fixed_instant() -> datetime:
    """A whole second, so `created` (integer seconds) equals it exactly."""
    return datetime.now(UTC).replace(microsecond=0)


def test_signed_request_is_served(live_hub: LiveHub) -> None:
    response = send(live_hub.signed(FEEDS, live_hub.identities["district"]))
    verify_response(response, live_hub.jwks)
    assert response.status_code == 200


def test_unsigned_request_is_refused(live_hub: LiveHub) -> None:
    assert_refused(live_hub, send(live_hub.signed(FEEDS, None)), "request is not signed")


def test_expired_signature_is_refused(live_hub: LiveHub, set_clock: Clock) -> None:
    created = fixed_instant()
    set_clock(created + timedelta(seconds=WINDOW + 1))
    response = send(live_hub.signed(FEEDS, live_hub.identities["district"], created=created))
    assert_refused(live_hub, response, "signature expired")


def test_signature_at_the_edge_of_the_window_is_accepted(live_hub: LiveHub, set_clock: Clock) -> None:
    created = fixed_instant()
    set_clock(created + timedelta(seconds=WINDOW - 1))
    response = send(live_hub.signed(FEEDS, live_hub.identities["district"], created=created))
    assert response.status_code == 200


def test_signature_from_the_future_is_refused(live_hub: LiveHub, set_clock: Clock) -> None:
    now = fixed_instant()
    set_clock(now)
    future = now + timedelta(seconds=WINDOW + 1)
    response = send(live_hub.signed(FEEDS, live_hub.identities["district"], created=future))
    assert_refused(live_hub, response, "signature created in the future")


def test_replayed_request_is_refused(live_hub: LiveHub) -> None:
    request = live_hub.signed(FEEDS, live_hub.identities["district"])
    assert send(request).status_code == 200
    assert_refused(live_hub, send(request), "nonce already used")


def test_signature_by_another_key_is_refused(live_hub: LiveHub) -> None:
    impostor = Identity("district", live_hub.identities["district"].key_id, Ed25519PrivateKey.generate())
    assert_refused(live_hub, send(live_hub.signed(FEEDS, impostor)), "signature does not verify")


def test_unknown_key_id_is_refused(live_hub: LiveHub) -> None:
    stranger = Identity("district", "district-00000000", Ed25519PrivateKey.generate())
    assert_refused(live_hub, send(live_hub.signed(FEEDS, stranger)), "unknown or revoked key")


def test_query_changed_after_signing_is_refused(live_hub: LiveHub) -> None:
    request = live_hub.signed(f"{FEEDS}/{FEED}/records", live_hub.identities["district"], {"limit": "1"})
    request.url = str(request.url).replace("limit=1", "limit=50")
    assert_refused(live_hub, send(request), "signature does not verify")


def test_revoked_key_is_refused_while_the_other_key_still_works(live_hub: LiveHub) -> None:
    old = new_identity(live_hub.settings, "public_security")
    new = new_identity(live_hub.settings, "public_security")  # a hand-over: both valid at once
    assert send(live_hub.signed(FEEDS, old)).status_code == 200
    assert send(live_hub.signed(FEEDS, new)).status_code == 200
    revoke_key(live_hub.settings, old.key_id)
    assert_refused(live_hub, send(live_hub.signed(FEEDS, old)), "unknown or revoked key")
    assert send(live_hub.signed(FEEDS, new)).status_code == 200
    revoke_key(live_hub.settings, new.key_id)


def test_revoked_consumer_is_refused_at_once(live_hub: LiveHub) -> None:
    probe = new_identity(live_hub.settings, "revoked_probe", policy="district")
    assert send(live_hub.signed(FEEDS, probe)).status_code == 200
    revoke_consumer(live_hub.settings, "revoked_probe")
    assert_refused(live_hub, send(live_hub.signed(FEEDS, probe)), "unknown or revoked key")


def _sign_custom(request: requests.PreparedRequest, identity: Identity, **options: object) -> None:
    signer = HTTPMessageSigner(
        signature_algorithm=ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={identity.key_id: identity.private_key}),
    )
    signer.sign(request, key_id=identity.key_id, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        # @query left out: the query (cursor, limit) could be changed in transit.
        (
            {"covered_component_ids": COMPONENTS[:3], "nonce": "n-1"},
            "signature must cover @method, @authority, @path and @query (or @target-uri)",
        ),
        # No nonce: a replay could not be told apart.
        (
            {"covered_component_ids": COMPONENTS},
            "signature needs a nonce of at most 200 characters",
        ),
        # No alg parameter.
        (
            {"covered_component_ids": COMPONENTS, "nonce": "n-2", "include_alg": False},
            'signature must declare alg="ed25519"',
        ),
    ],
)
def test_incomplete_signature_is_refused(live_hub: LiveHub, options: dict[str, object], reason: str) -> None:
    identity = live_hub.identities["district"]
    request = live_hub.signed(FEEDS, None)
    _sign_custom(request, identity, created=datetime.now(UTC), **options)
    assert_refused(live_hub, send(request), reason)


def test_garbage_signature_headers_are_refused(live_hub: LiveHub) -> None:
    request = live_hub.signed(FEEDS, None)
    request.headers["Signature-Input"] = "neuron=(nonsense"
    request.headers["Signature"] = "neuron=:AAAA:"
    assert_refused(live_hub, send(request), "malformed or incomplete signature")
