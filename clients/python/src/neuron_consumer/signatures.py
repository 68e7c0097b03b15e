"""RFC 9421 HTTP message signatures as the hub uses them (Ed25519), via http-message-signatures.

Requests are signed (label `neuron`) over `@method`, `@authority`, `@path` and `@query`,
with `created`, `keyid`, `alg` and a fresh `nonce`. Every hub response carries a signature
(label `hub`) that must cover `@status`, `content-digest`, `content-type` (when present),
every `Neuron-*` header and, when the request was signed, the request's own signature
(`"signature";req`), which binds the answer to the one request it answers. `created` must
lie within ±window of the consumer's clock.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    MappingKeyResolver,
)
from http_message_signatures.algorithms import ED25519

from neuron_consumer.errors import IntegrityError

REQUEST_LABEL = "neuron"
REQUEST_COMPONENTS = ("@method", "@authority", "@path", "@query")
REQUEST_BINDING = '"signature";req'
_SHA256 = re.compile(r"^\s*sha-256=:([A-Za-z0-9+/]+=*):\s*$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def sign_request(request: Any, key_id: str, private_key: Ed25519PrivateKey, created: datetime | None = None) -> None:
    """Sign a prepared request in place."""
    signer = HTTPMessageSigner(
        signature_algorithm=ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: private_key}),
    )
    signer.sign(
        request,
        key_id=key_id,
        created=created or utcnow(),
        nonce=secrets.token_urlsafe(24),
        label=REQUEST_LABEL,
        covered_component_ids=REQUEST_COMPONENTS,
    )


def _timestamp(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSignature("a signature timestamp is not an integer")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidSignature("a signature timestamp is out of range") from exc


class _WindowVerifier(HTTPMessageVerifier):
    """Accepts `created` within ±window of an injectable clock (the library's own check reads
    the wall clock and allows 5 s into the future; clocks drift more than that)."""

    def __init__(self, keys: HTTPSignatureKeyResolver, window: timedelta, now: Callable[[], datetime]) -> None:
        super().__init__(signature_algorithm=ED25519, key_resolver=keys)
        self.window = window
        self.now = now

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        params = sig_input.params
        if "created" not in params:
            raise InvalidSignature('the signature has no "created" parameter')
        created, now = _timestamp(params["created"]), self.now()
        if not now - self.window <= created <= now + self.window:
            raise InvalidSignature("the signature was not created within the allowed window (check your clock)")
        if "expires" in params and _timestamp(params["expires"]) < now:
            raise InvalidSignature("the signature has expired")


def required_components(response: requests.Response) -> list[str]:
    """What the hub's signature on `response` must cover."""
    names = {n.lower() for n in response.headers}
    components = ["content-digest", "@status"]
    if "content-type" in names:
        components.append("content-type")
    components += sorted(n for n in names if n.startswith("neuron-"))
    request = response.request
    if request is not None and "signature" in request.headers:
        components.append(REQUEST_BINDING)
    return components


def verify_response(
    response: requests.Response,
    keys: dict[str, Ed25519PublicKey],
    *,
    body: bytes | None,
    now: Callable[[], datetime] = utcnow,
    window_seconds: int = 300,
) -> None:
    """Check the hub's signature (and, with `body`, the Content-Digest); IntegrityError otherwise."""
    verifier = _WindowVerifier(
        MappingKeyResolver(public_keys=keys, private_keys={}), timedelta(seconds=window_seconds), now
    )
    try:
        verifier.verify(response, max_age=None, require_components=required_components(response), body=body)
    except HTTPMessageSignaturesException as exc:
        raise IntegrityError(f"a response from the hub does not verify: {exc or 'bad signature'}") from exc


def signed_sha256(response: requests.Response) -> bytes:
    """The SHA-256 a (verified) streamed response's body must have, from its Content-Digest."""
    match = _SHA256.match(response.headers.get("Content-Digest", ""))
    if match is None:
        raise IntegrityError("the hub's Content-Digest is not a single sha-256 digest")
    return base64.b64decode(match.group(1))
