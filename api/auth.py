"""Request authentication: an RFC 9421 Ed25519 signature by a live consumer key, fresh, never replayed.

The checks run cheapest first and the database is touched only by the key lookup and,
once the signature verifies, the nonce insert (so unsigned noise cannot fill the nonce
table). Refusal reasons are fixed strings: they never quote a header value.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import HTTPMessageSignaturesException, HTTPSignatureKeyResolver
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError as DuplicateRow
from sqlalchemy.orm import Session

from api.asgi import RequestView
from api.signing import ALGORITHM, REQUEST_COMPONENTS, SignatureExpired, SignatureFromFuture, WindowVerifier
from privacy.keys import b64u_decode
from warehouse.control import Consumer, ConsumerKey, SeenNonce, session_scope

MAX_NONCE_LENGTH = 200  # the nonces table's column
PURGE_INTERVAL = timedelta(minutes=1)
COVERED = {f'"{component}"' for component in REQUEST_COMPONENTS}  # as the library serialises them


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


class _LiveConsumerKeys(HTTPSignatureKeyResolver):
    """Resolves a keyid to a non-revoked key of a non-revoked consumer, remembering whose it is."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.caller: Caller | None = None
        self.problem: str | None = None

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        row = self.session.execute(
            select(ConsumerKey, Consumer)
            .join(Consumer, Consumer.name == ConsumerKey.consumer)
            .where(ConsumerKey.key_id == key_id)
        ).first()
        if row is None:
            self.problem = "unknown_key"
            return None
        key, consumer = row
        if key.revoked_at is not None or consumer.revoked_at is not None:
            self.problem = "revoked_key"
            return None
        self.caller = Caller(consumer=consumer.name, key_id=key.key_id, policy=consumer.policy)
        return Ed25519PublicKey.from_public_bytes(b64u_decode(key.public_key))

    def resolve_private_key(self, key_id: str) -> None:
        raise HTTPMessageSignaturesException("the hub holds no consumer private keys")


class RequestAuthenticator:
    """Authenticates signed requests against the consumer keys in the control database."""

    def __init__(self, control_url: str, window_seconds: int) -> None:
        self.control_url = control_url
        self.window = timedelta(seconds=window_seconds)
        self._last_purge: datetime | None = None
        self._purge_lock = threading.Lock()

    def authenticate(self, request: RequestView, now: datetime) -> Caller:
        """The caller of a signed request, or AuthError; records the nonce as used."""
        if "signature-input" not in request.headers or "signature" not in request.headers:
            raise AuthError("request is not signed", "unsigned")
        with session_scope(self.control_url) as session:
            keys = _LiveConsumerKeys(session)
            verifier = WindowVerifier(keys, self.window, lambda: now)
            try:
                result = verifier.verify(request, max_age=None)[0]
            except SignatureExpired as exc:
                raise AuthError("signature expired", "expired") from exc
            except SignatureFromFuture as exc:
                raise AuthError("signature created in the future", "future") from exc
            except HTTPMessageSignaturesException as exc:  # InvalidSignature is a subclass
                if keys.problem is not None:
                    raise AuthError("unknown or revoked key", keys.problem) from exc
                if keys.caller is not None:
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
        self._remember_nonce(keys.caller.key_id, nonce, now)
        return keys.caller

    def _remember_nonce(self, key_id: str, nonce: str, now: datetime) -> None:
        try:
            with session_scope(self.control_url) as session:
                session.add(SeenNonce(key_id=key_id, nonce=nonce, seen_at=now))
        except DuplicateRow as exc:
            raise AuthError("nonce already used", "replay") from exc
        self._purge_old_nonces(now)

    def _purge_old_nonces(self, now: datetime) -> None:
        # A request is accepted while |now - created| <= window, and created may lie up to
        # a window ahead of when its nonce was first seen, so a nonce must be kept for two
        # windows; older ones can no longer be replayed and are dropped, once a minute at most.
        with self._purge_lock:
            if self._last_purge is not None and now - self._last_purge < PURGE_INTERVAL:
                return
            self._last_purge = now
        with session_scope(self.control_url) as session:
            session.execute(delete(SeenNonce).where(SeenNonce.seen_at < now - 2 * self.window))
