"""Request authentication: an RFC 9421 Ed25519 signature by a live consumer key, fresh, never replayed.

The checks run cheapest first and the database is touched only by the key lookup and,
once the signature verifies, the nonce check (so unsigned noise cannot fill the nonce
store). A request with a body must sign its Content-Digest, and the digest must match.
Keys are looked up afresh on every request, so a revocation takes effect on the next one.
Refusal reasons are fixed strings: they never quote a header value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import HTTPMessageSignaturesException, HTTPSignatureKeyResolver
from sqlalchemy import Connection, bindparam, select

from api.asgi import RequestView
from api.nonces import DatabaseNonces, NonceReused, NonceStore
from api.signing import ALGORITHM, REQUEST_COMPONENTS, SignatureExpired, SignatureFromFuture, WindowVerifier
from privacy.keys import b64u_decode
from warehouse.control import Consumer, ConsumerKey, engine_for

MAX_NONCE_LENGTH = 200  # the nonces table's column
COVERED = {f'"{component}"' for component in REQUEST_COMPONENTS}  # as the library serialises them
# Built once: this runs on every request, and building a statement costs more than running it.
KEY_QUERY = (
    select(
        ConsumerKey.public_key,
        ConsumerKey.revoked_at,
        Consumer.name,
        Consumer.policy,
        Consumer.revoked_at.label("consumer_revoked_at"),
    )
    .join(Consumer, Consumer.name == ConsumerKey.consumer)
    .where(ConsumerKey.key_id == bindparam("key_id"))
)


class AuthError(Exception):
    """A request that does not authenticate: `reason` is for the caller, `code` for the audit log."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class Caller:
    """An authenticated consumer: who signed, with which key, under which policy."""

    consumer: str
    key_id: str
    policy: str
    nonce: str = field(default="", compare=False)


class _LiveConsumerKeys(HTTPSignatureKeyResolver):
    """Resolves a keyid to a non-revoked key of a non-revoked consumer, remembering whose it is."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.caller: Caller | None = None
        self.problem: str | None = None

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        row = self.connection.execute(KEY_QUERY, {"key_id": key_id}).first()
        if row is None:
            self.problem = "unknown_key"
            return None
        if row.revoked_at is not None or row.consumer_revoked_at is not None:
            self.problem = "revoked_key"
            return None
        self.caller = Caller(consumer=row.name, key_id=key_id, policy=row.policy)
        return Ed25519PublicKey.from_public_bytes(b64u_decode(row.public_key))

    def resolve_private_key(self, key_id: str) -> None:
        raise HTTPMessageSignaturesException("the hub holds no consumer private keys")


class RequestAuthenticator:
    """Authenticates signed requests against the consumer keys in the control database."""

    def __init__(self, control_url: str, window_seconds: int, nonces: NonceStore | None = None) -> None:
        self.control_url = control_url
        self.window = timedelta(seconds=window_seconds)
        self.nonces = nonces or DatabaseNonces(control_url, self.window)

    def authenticate(self, request: RequestView, now: datetime, body: bytes = b"") -> Caller:
        """The caller of a signed request, or AuthError.

        The nonce is checked (and, by a store that is not deferred, claimed); a deferred
        store claims it when the request's audit entry is written.
        """
        if "signature-input" not in request.headers or "signature" not in request.headers:
            raise AuthError("request is not signed", "unsigned")
        with engine_for(self.control_url).connect() as connection:
            keys = _LiveConsumerKeys(connection)
            verifier = WindowVerifier(keys, self.window, lambda: now)
            try:
                result = verifier.verify(request, max_age=None, body=body)[0]
            except SignatureExpired as exc:
                raise AuthError("signature expired", "expired") from exc
            except SignatureFromFuture as exc:
                raise AuthError("signature created in the future", "future") from exc
            except HTTPMessageSignaturesException as exc:  # InvalidSignature is a subclass
                if keys.problem is not None:
                    raise AuthError("unknown or revoked key", keys.problem) from exc
                if keys.caller is not None:
                    if body and "content-digest" in str(exc).lower():
                        raise AuthError("a request body needs a signed, matching Content-Digest", "digest") from exc
                    raise AuthError("signature does not verify", "bad_signature") from exc
                raise AuthError("malformed or incomplete signature", "malformed") from exc
            if not set(result.covered_components) >= COVERED:
                raise AuthError("signature must cover @method, @authority, @path and @query", "malformed")
            if result.parameters.get("alg") != ALGORITHM:
                raise AuthError('signature must declare alg="ed25519"', "malformed")
            nonce = result.nonce
            if not nonce or len(nonce) > MAX_NONCE_LENGTH:
                raise AuthError("signature needs a nonce of at most 200 characters", "malformed")
            assert keys.caller is not None  # the signature verified, so the key resolved
            try:
                self.nonces.check(keys.caller.key_id, nonce, now, connection)
            except NonceReused as exc:
                raise AuthError("nonce already used", "replay") from exc
        return Caller(keys.caller.consumer, keys.caller.key_id, keys.caller.policy, nonce)
