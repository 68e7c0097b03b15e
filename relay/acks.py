"""Consumers' acknowledgements: a JWS by one of the consumer's own registered keys, or refused.

A consumer acknowledges an alarm on its broker's `…/alarm-ack/{alarm_id}` topic. The
broker's ACL says who may publish there, but an acknowledgement stops the alarm's
escalation, so the relay does not take the broker's word alone: the payload must be a
compact JWS (Ed25519, RFC 9864 `Ed25519` or the older `EdDSA`) over
`{"alarm_id": …}`, signed by a live key that the consumer registered with the hub
(`neuron consumers add`, the same keys that sign its export-API requests), for the alarm
named in the topic. Anything else is refused with a reason (which names no value) and the
alarm keeps its deadline.

Freshness and bounds (issue 17): the payload is at most `MAX_ACK_BYTES`; its body carries
`iat` (seconds since the epoch, within `MAX_AGE_SECONDS` in the past and `MAX_SKEW_SECONDS`
in the future of the hub's clock) and `jti` (a unique id, at most 128 characters), which the
relay remembers (relay/service.py, with the inbound message keys) so the same ack is never
honoured twice, e.g. replayed against the same alarm raised again after it cleared. A key's
liveness is read from the control database on every acknowledgement (acknowledgements are
rare next to alarms, and one indexed read costs far less than an alarm's fsync): a revoked
key's or consumer's acks are refused from the moment the revocation is committed.
"""

from __future__ import annotations

import binascii
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from privacy.keys import b64u_decode
from warehouse.control import engine_for
from warehouse.models import Consumer, ConsumerKey

ALGORITHMS = frozenset({"Ed25519", "EdDSA"})
MAX_ACK_BYTES = 2048  # an Ed25519 JWS over {alarm_id, iat, jti} is ~300 bytes
MAX_AGE_SECONDS = 300.0
MAX_SKEW_SECONDS = 60.0
MAX_JTI_CHARS = 128


@dataclass(frozen=True)
class ConsumerKeyEntry:
    consumer: str
    policy: str
    key: Ed25519PublicKey


@dataclass(frozen=True)
class AckClaims:
    """What an accepted acknowledgement names: the key that signed it and its unique id."""

    kid: str
    jti: str


class AckVerifier:
    """Checks acknowledgements against the consumers' live keys in the control database."""

    def __init__(self, control_url: str, clock: Callable[[], float] = time.time) -> None:
        self.control_url = control_url
        self.clock = clock  # the wall clock the consumers' `iat` is read against
        self._parsed: dict[tuple[str, str], Ed25519PublicKey] = {}

    def _key(self, kid: str) -> ConsumerKeyEntry | None:
        """The key `kid` if it and its consumer are live now (read on every acknowledgement)."""
        query = (
            select(ConsumerKey.public_key, Consumer.name, Consumer.policy)
            .join(Consumer, Consumer.name == ConsumerKey.consumer)
            .where(ConsumerKey.key_id == kid, ConsumerKey.revoked_at.is_(None), Consumer.revoked_at.is_(None))
        )
        with engine_for(self.control_url).connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        raw, name, policy = row
        key = self._parsed.get((kid, raw))
        if key is None:
            if len(self._parsed) > 10_000:
                self._parsed.clear()
            key = self._parsed[(kid, raw)] = Ed25519PublicKey.from_public_bytes(b64u_decode(raw))
        return ConsumerKeyEntry(name, policy, key)

    def check(self, payload: bytes, alarm_id: str, policy: str) -> tuple[str | None, AckClaims | None]:
        """(why this acknowledgement of `alarm_id` from the consumer(s) of `policy` is refused,
        None) or (None, its claims: signed by one of them, for this alarm, fresh). The caller
        refuses a `jti` it has seen before."""
        if len(payload) > MAX_ACK_BYTES:
            return f"over the {MAX_ACK_BYTES}-byte limit", None
        try:
            header_b64, body_b64, signature_b64 = payload.decode("ascii").strip().split(".")
            header = json.loads(b64u_decode(header_b64))
            body = json.loads(b64u_decode(body_b64))
            signature = b64u_decode(signature_b64)
        except (UnicodeDecodeError, ValueError, RecursionError, binascii.Error):
            return "not a compact JWS", None
        if not isinstance(header, dict) or header.get("alg") not in ALGORITHMS:
            return "not an Ed25519 JWS", None
        kid = header.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= MAX_JTI_CHARS:
            return "signed by no live consumer key", None
        entry = self._key(kid)
        if entry is None:
            return "signed by no live consumer key", None
        if entry.policy != policy:
            return "signed by another consumer's key", None
        try:
            entry.key.verify(signature, f"{header_b64}.{body_b64}".encode("ascii"))
        except InvalidSignature:
            return "signature does not verify", None
        if not isinstance(body, dict) or body.get("alarm_id") != alarm_id:
            return "signed for another alarm", None
        iat, jti = body.get("iat"), body.get("jti")
        if isinstance(iat, bool) or not isinstance(iat, (int, float)) or not math.isfinite(iat):
            return "field iat is missing or not a number", None
        now = self.clock()
        if iat < now - MAX_AGE_SECONDS or iat > now + MAX_SKEW_SECONDS:
            return "field iat is outside the freshness window", None
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_CHARS:
            return "field jti is missing or too long", None
        return None, AckClaims(kid, jti)

    def refusal(self, payload: bytes, alarm_id: str, policy: str) -> str | None:
        """Why this acknowledgement is refused (None: accepted, `jti` not checked: see `check`)."""
        return self.check(payload, alarm_id, policy)[0]
