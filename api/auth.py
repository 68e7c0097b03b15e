"""Request authentication: an RFC 9421 Ed25519 signature by a live consumer key, fresh, never replayed.

The checks run cheapest first. Most requests take the lean path (`authenticate_scope`, in
the event loop, no I/O): the signature of the lean profile (api.signing) by a key already
in this process's key cache, its nonce not seen by this process. Everything else (a key
not cached, a signature outside the lean profile) takes the library's path
(`authenticate`, in a worker thread), which reads the key from the control database and
caches it. A request with a body must sign its Content-Digest, and the digest must match.

Revocation stays effective at once: the key cache is a hint, not the authority. The gate
writes every authenticated request's audit entry before its response leaves, and the
audit writer checks, in that entry's transaction, that the key and its consumer are still
live (api.audit_writer); a request whose key was revoked meanwhile is refused there, and
its key leaves the cache. The nonce's authoritative claim is in the same transaction.
Refusal reasons are fixed strings: they never quote a header value.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import HTTPMessageSignaturesException, HTTPSignatureKeyResolver, InvalidSignature
from sqlalchemy import Connection, bindparam, select
from starlette.types import Scope

from api.asgi import RequestView
from api.nonces import DatabaseNonces, NonceReused, NonceStore, RecentNonces
from api.signing import (
    ALGORITHM,
    REQUEST_COMPONENTS,
    DigestMismatch,
    Outside,
    ParsedSignature,
    SignatureExpired,
    SignatureFromFuture,
    WindowVerifier,
    check_body_digest,
    check_window,
    parse_signature,
    request_components,
    signature_base,
    verify_ed25519,
)
from kernel.errors import Refused
from privacy.keys import b64u_decode
from warehouse.control import engine_for
from warehouse.models import Consumer, ConsumerKey

MAX_NONCE_LENGTH = 200  # the nonces table's column
COVERED = {f'"{component}"' for component in REQUEST_COMPONENTS}  # as the library serialises them
# RFC 9421 §2.2.2: `@target-uri` is the whole URI (scheme, authority, path and query), so a
# signature over it and `@method` binds everything the four components above bind; generic
# clients sign that way (issue 17).
COVERED_BY_URI = {'"@method"', '"@target-uri"'}
DEFAULT_PORTS = {"http": "80", "https": "443"}
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


class AuthError(Refused):
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


@dataclass(frozen=True)
class LiveKey:
    """A consumer key found live in the control database, parsed."""

    consumer: str
    policy: str
    public_key: Ed25519PublicKey


class KeyCache:
    """Live consumer keys by key id, parsed once per process.

    Only keys found live are cached, so its size is bounded by the keys registered. An entry
    is read again after `ttl` seconds, so a revoked key soon stops reaching the routes at
    all; what makes a revocation effective at once is the audit writer's check (module
    docstring), which also calls `forget`.
    """

    def __init__(self, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._keys: dict[str, tuple[LiveKey, float]] = {}
        self._lock = threading.Lock()

    def get(self, key_id: str) -> LiveKey | None:
        entry = self._keys.get(key_id)
        if entry is None or self.clock() - entry[1] > self.ttl:
            return None
        return entry[0]

    def put(self, key_id: str, key: LiveKey) -> None:
        with self._lock:
            self._keys[key_id] = (key, self.clock())

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._keys.pop(key_id, None)


class _LiveConsumerKeys(HTTPSignatureKeyResolver):
    """Resolves a keyid to a non-revoked key of a non-revoked consumer, remembering whose it is."""

    def __init__(self, connection: Connection, cache: KeyCache | None = None) -> None:
        self.connection = connection
        self.cache = cache
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
        public_key = Ed25519PublicKey.from_public_bytes(b64u_decode(row.public_key))
        if self.cache is not None:
            self.cache.put(key_id, LiveKey(row.name, row.policy, public_key))
        return public_key

    def resolve_private_key(self, key_id: str) -> None:
        raise HTTPMessageSignaturesException("the hub holds no consumer private keys")


class RequestAuthenticator:
    """Authenticates signed requests against the consumer keys in the control database."""

    def __init__(
        self,
        control_url: str,
        window_seconds: int,
        nonces: NonceStore | None = None,
        keys: KeyCache | None = None,
        public_names: Collection[str] = (),
    ) -> None:
        self.control_url = control_url
        # Empty: any authority (only for callers that build an authenticator by hand).
        self.public_names = {_normal_authority(name) for name in public_names}
        self.window = timedelta(seconds=window_seconds)
        self.nonces = nonces or DatabaseNonces(control_url, self.window)
        self.keys = keys or KeyCache()
        self.recent = RecentNonces(self.window)

    def authenticate_scope(self, scope: Scope, now: datetime, body: bytes = b"") -> Caller | None:
        """The lean path: the caller, AuthError, or None when the request needs `authenticate`.

        No I/O: a nonce store that is not deferred (Redis) still has to `claim` the nonce.
        """
        lines: dict[str, list[str]] = {}
        for raw_name, raw_value in scope["headers"]:
            lines.setdefault(raw_name.decode("latin-1").lower(), []).append(raw_value.decode("latin-1").strip(" \t"))

        def header(name: str) -> str | None:
            values = lines.get(name)
            return ", ".join(values) if values is not None else None

        if "signature-input" not in lines or "signature" not in lines:
            raise AuthError("request is not signed", "unsigned")
        if len(lines.get("host", ())) == 1:
            self._check_authority(header("host") or "", scope.get("scheme", "http"))
        try:
            signature = parse_signature(header("signature-input"), header("signature"))
            _check_window(signature, now, self.window)
            live = self.keys.get(signature.key_id or "")
            if live is None or len(lines.get("host", ())) != 1:
                return None
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
            resolve = request_components(
                scope["method"],
                scope.get("scheme", "http"),
                header("host"),
                raw_path.decode("latin-1"),
                scope.get("query_string", b"").decode("latin-1"),
                header,
            )
            base = signature_base(signature, resolve)
            try:
                verify_ed25519(live.public_key, signature, base)
            except InvalidSignature as exc:
                raise AuthError("signature does not verify", "bad_signature") from exc
            try:
                check_body_digest(signature, header("content-digest"), body)
            except DigestMismatch as exc:
                if body:
                    raise AuthError("a request body needs a signed, matching Content-Digest", "digest") from exc
                raise AuthError("signature does not verify", "bad_signature") from exc
        except Outside:
            return None
        key_id = signature.key_id or ""
        nonce = _profile(set(signature.components), signature.params.get("alg"), signature.nonce)
        try:
            self.recent.claim(key_id, nonce, now)
        except NonceReused as exc:
            raise AuthError("nonce already used", "replay") from exc
        return Caller(live.consumer, key_id, live.policy, nonce)

    def also_known_as(self, authority: str) -> None:
        """Accept one more public name (a server that learns its port only once bound)."""
        self.public_names.add(_normal_authority(authority))

    def _check_authority(self, authority: str, scheme: str) -> None:
        """AuthError unless the request is addressed to one of this hub's public names.

        `@authority` and the authority inside `@target-uri` are both taken from the request's
        Host, so checking the Host checks whichever the signature covers: a request signed
        for hub A and sent to hub B fails here, before its nonce is claimed (hubs keep their
        own nonces, so only the name can stop a cross-hub replay).
        """
        if self.public_names and _normal_authority(authority, scheme) not in self.public_names:
            raise AuthError("request is signed for another authority than this hub", "wrong_hub")

    def claim(self, caller: Caller, now: datetime) -> None:
        """Claim the nonce in a store that is not deferred (after `authenticate_scope`); blocking I/O."""
        try:
            self.nonces.check(caller.key_id, caller.nonce, now)
        except NonceReused as exc:
            raise AuthError("nonce already used", "replay") from exc

    def authenticate(self, request: RequestView, now: datetime, body: bytes = b"") -> Caller:
        """The caller of a signed request, or AuthError.

        The nonce is checked (and, by a store that is not deferred, claimed); a deferred
        store claims it when the request's audit entry is written.
        """
        if "signature-input" not in request.headers or "signature" not in request.headers:
            raise AuthError("request is not signed", "unsigned")
        url = urlsplit(request.url)
        self._check_authority(url.netloc, url.scheme)
        with engine_for(self.control_url).connect() as connection:
            keys = _LiveConsumerKeys(connection, self.keys)
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
            nonce = _profile(set(result.covered_components), result.parameters.get("alg"), result.nonce)
            assert keys.caller is not None  # the signature verified, so the key resolved
            try:
                self.recent.claim(keys.caller.key_id, nonce, now)
                self.nonces.check(keys.caller.key_id, nonce, now, connection)
            except NonceReused as exc:
                raise AuthError("nonce already used", "replay") from exc
        return Caller(keys.caller.consumer, keys.caller.key_id, keys.caller.policy, nonce)


def _check_window(signature: ParsedSignature, now: datetime, window: timedelta) -> None:
    try:
        check_window(signature, now, window)
    except SignatureExpired as exc:
        raise AuthError("signature expired", "expired") from exc
    except SignatureFromFuture as exc:
        raise AuthError("signature created in the future", "future") from exc
    except InvalidSignature as exc:
        raise AuthError("malformed or incomplete signature", "malformed") from exc


def _normal_authority(authority: str, scheme: str = "") -> str:
    """An authority in lower case, without the scheme's default port (`host` = `host:443` on https)."""
    authority = authority.strip().lower()
    # A configured name has no scheme: either default port is taken as implied.
    for name, default in DEFAULT_PORTS.items():
        if scheme in (name, "") and authority.endswith(":" + default):
            return authority[: -len(default) - 1]
    return authority


def _profile(covered: set[str], alg: object, nonce: str | None) -> str:
    """What the hub asks of a signature beyond validity (the same on both paths); its nonce."""
    if not (covered >= COVERED or covered >= COVERED_BY_URI):
        raise AuthError("signature must cover @method, @authority, @path and @query (or @target-uri)", "malformed")
    if alg != ALGORITHM:
        raise AuthError('signature must declare alg="ed25519"', "malformed")
    if not nonce or len(nonce) > MAX_NONCE_LENGTH:
        raise AuthError("signature needs a nonce of at most 200 characters", "malformed")
    return nonce
