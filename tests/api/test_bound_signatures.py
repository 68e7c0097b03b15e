"""Signatures bound to this hub (issue 17): a signed `@authority`, or the authority inside a
signed `@target-uri`, must be one of the hub's public names, so a request signed for hub A
and sent to hub B is refused by B; `@method` + `@target-uri` is accepted as equivalent to
`@method`, `@authority`, `@path` and `@query` (generic RFC 9421 clients sign that way)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import requests
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver
from http_message_signatures.algorithms import ED25519

from api.consumers import register_consumer
from api.signing import REQUEST_LABEL
from tests.api.hub import FLOW, Identity, LiveHub, public_pem, send

CATALOG = "/v1/feeds"


def _sign_uri(request: requests.PreparedRequest, identity: Identity) -> None:
    """Sign as a generic RFC 9421 client does: `@method` and `@target-uri`."""
    signer = HTTPMessageSigner(
        signature_algorithm=ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={identity.key_id: identity.private_key}),
    )
    signer.sign(
        request,
        key_id=identity.key_id,
        created=datetime.now(UTC),
        nonce=secrets.token_urlsafe(24),
        label=REQUEST_LABEL,
        covered_component_ids=("@method", "@target-uri"),
        include_alg=True,
    )


def _to(request: requests.PreparedRequest, other: LiveHub) -> requests.PreparedRequest:
    """The same bytes (Host, signature and all) delivered to another hub's socket."""
    authority = request.url.split("/")[2]  # type: ignore[union-attr]
    request.headers["Host"] = authority
    request.url = other.url + request.url.split(authority, 1)[1]  # type: ignore[union-attr]
    return request


def test_a_request_signed_for_another_hub_is_refused(live_hub: LiveHub, fresh_hub: LiveHub) -> None:
    district = live_hub.identities["district"]
    # The same consumer key is registered at both hubs: only the hub's name tells them apart.
    assert register_consumer(fresh_hub.settings, "district", public_pem(district.private_key)) == district.key_id
    request = live_hub.signed(CATALOG, district)
    replayed = send(_to(request, fresh_hub))
    assert replayed.status_code == 401
    assert "another authority" in replayed.json()["detail"]
    # Signed for hub B itself, the same key is welcome there.
    assert send(fresh_hub.signed(CATALOG, district)).status_code == 200


def test_a_signature_over_target_uri_is_accepted(live_hub: LiveHub) -> None:
    district = live_hub.identities["district"]
    request = requests.Request("GET", f"{live_hub.url}/v1/feeds/{FLOW}/records", params={"limit": 2}).prepare()
    _sign_uri(request, district)
    assert send(request).status_code == 200


def test_a_target_uri_naming_another_hub_is_refused(live_hub: LiveHub, fresh_hub: LiveHub) -> None:
    district = live_hub.identities["district"]
    register_consumer(fresh_hub.settings, "district", public_pem(district.private_key))
    request = requests.Request("GET", live_hub.url + CATALOG).prepare()
    _sign_uri(request, district)
    assert send(_to(request, fresh_hub)).status_code == 401
