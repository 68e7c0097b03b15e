"""RFC 9421 message signatures (Ed25519), shared by the hub and the consumer's client.
(The hub's responses are signed in api.response_signing.)

Consumers sign every request over `@method`, `@authority`, `@path` and `@query` with a
fresh nonce. The hub signs every response over `@status`, `content-digest`, `content-type`
and every `Neuron-*` header (the cursor and partition headers steer the client, so they
must not be alterable), plus, when the request carried a signature, that request's
`Signature` field (`"signature";req`): it binds a response to the one request it answers,
so a recorded response cannot be replayed as the answer to another request.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    MappingKeyResolver,
)
from http_message_signatures.algorithms import ED25519

from privacy.keys import b64u_decode

log = logging.getLogger(__name__)

ALGORITHM = ED25519.algorithm_id
REQUEST_LABEL = "neuron"
RESPONSE_LABEL = "hub"
REQUEST_COMPONENTS = ("@method", "@authority", "@path", "@query")
REQUEST_BINDING = '"signature";req'
HEADER_PREFIX = "neuron-"


class SignatureExpired(InvalidSignature):
    """`created` is older than the window allows (or `expires` has passed)."""


class SignatureFromFuture(InvalidSignature):
    """`created` lies further ahead than the window allows."""


class WindowVerifier(HTTPMessageVerifier):
    """An Ed25519 verifier that accepts `created` within ±window of an injectable clock.

    The library's own check reads the wall clock and tolerates 5 s of skew into the
    future; consumers' clocks drift more than that, and tests need to move time.
    """

    def __init__(self, key_resolver: HTTPSignatureKeyResolver, window: timedelta, now: Callable[[], datetime]) -> None:
        super().__init__(signature_algorithm=ED25519, key_resolver=key_resolver)
        self.window = window
        self.now = now

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        params = sig_input.params
        if "created" not in params:
            raise InvalidSignature('Signature is missing a required "created" parameter')
        created = self._parse_integer_timestamp(params["created"], field_name="created")
        now = self.now()
        if created < now - self.window:
            raise SignatureExpired("signature expired")
        if created > now + self.window:
            raise SignatureFromFuture("signature created in the future")
        if "expires" in params and self._parse_integer_timestamp(params["expires"], "expires") < now:
            raise SignatureExpired("signature expired")


def public_keys_from_jwks(jwks: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS by key id (other key types are ignored)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for jwk in jwks.get("keys", []):
        if isinstance(jwk, dict) and jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
            try:
                keys[str(jwk["kid"])] = Ed25519PublicKey.from_public_bytes(b64u_decode(str(jwk["x"])))
            except (KeyError, ValueError):
                continue
    return keys


def sign_request(
    request: Any,
    key_id: str,
    private_key: Ed25519PrivateKey,
    *,
    created: datetime | None = None,
    nonce: str | None = None,
    body: bytes | None = None,
) -> None:
    """Sign a request in place (any object with `method`, absolute `url`, `headers`); a `body`
    gets a Content-Digest, which the signature covers."""
    signer = HTTPMessageSigner(
        signature_algorithm=ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: private_key}),
    )
    signer.sign(
        request,
        key_id=key_id,
        created=created or datetime.now(UTC),
        nonce=nonce or secrets.token_urlsafe(24),
        label=REQUEST_LABEL,
        covered_component_ids=REQUEST_COMPONENTS,
        body=body,
    )


def response_components(header_names: list[str], bound: bool) -> list[str]:
    """What a hub response signature covers besides `content-digest` (which signing adds)."""
    names = [n.lower() for n in header_names]
    components = ["@status"]
    if "content-type" in names:
        components.append("content-type")
    components += sorted({n for n in names if n.startswith(HEADER_PREFIX)})
    if bound:
        components.append(REQUEST_BINDING)
    return components
