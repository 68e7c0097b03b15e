"""Consumers' acknowledgements: a JWS by one of the consumer's own registered keys, or refused.

A consumer acknowledges an alarm on its broker's `…/alarm-ack/{alarm_id}` topic. The
broker's ACL says who may publish there, but an acknowledgement stops the alarm's
escalation, so the relay does not take the broker's word alone: the payload must be a
compact JWS (Ed25519, RFC 9864 `Ed25519` or the older `EdDSA`) over
`{"alarm_id": …}`, signed by a live key that the consumer registered with the hub
(`neuron consumers add`, the same keys that sign its export-API requests), for the alarm
named in the topic. Anything else is refused with a reason (which names no value) and the
alarm keeps its deadline. Keys are re-read from the control database at most once a
minute, and at once when an unknown key id appears (a key registered since).
"""

from __future__ import annotations

import binascii
import json
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from privacy.keys import b64u_decode
from warehouse.control import engine_for
from warehouse.models import Consumer, ConsumerKey

ALGORITHMS = frozenset({"Ed25519", "EdDSA"})
REFRESH_SECONDS = 60.0
UNKNOWN_KEY_REFRESH_SECONDS = 5.0


@dataclass(frozen=True)
class ConsumerKeyEntry:
    consumer: str
    policy: str
    key: Ed25519PublicKey


class AckVerifier:
    """Checks acknowledgements against the consumers' live keys in the control database."""

    def __init__(self, control_url: str) -> None:
        self.control_url = control_url
        self._keys: dict[str, ConsumerKeyEntry] = {}
        self._loaded = 0.0

    def _load(self) -> None:
        query = (
            select(ConsumerKey.key_id, ConsumerKey.public_key, Consumer.name, Consumer.policy)
            .join(Consumer, Consumer.name == ConsumerKey.consumer)
            .where(ConsumerKey.revoked_at.is_(None), Consumer.revoked_at.is_(None))
        )
        with engine_for(self.control_url).connect() as conn:
            rows = conn.execute(query).all()
        self._keys = {
            kid: ConsumerKeyEntry(name, policy, Ed25519PublicKey.from_public_bytes(b64u_decode(raw)))
            for kid, raw, name, policy in rows
        }
        self._loaded = time.monotonic()

    def _key(self, kid: str) -> ConsumerKeyEntry | None:
        age = time.monotonic() - self._loaded
        if age > REFRESH_SECONDS or (kid not in self._keys and age > UNKNOWN_KEY_REFRESH_SECONDS):
            self._load()
        return self._keys.get(kid)

    def refusal(self, payload: bytes, alarm_id: str, policy: str) -> str | None:
        """Why this acknowledgement of `alarm_id` from the consumer(s) of `policy` is refused
        (None: it is signed by one of them, for this alarm)."""
        try:
            header_b64, body_b64, signature_b64 = payload.decode("ascii").strip().split(".")
            header = json.loads(b64u_decode(header_b64))
            body = json.loads(b64u_decode(body_b64))
            signature = b64u_decode(signature_b64)
        except (UnicodeDecodeError, ValueError, binascii.Error):
            return "not a compact JWS"
        if not isinstance(header, dict) or header.get("alg") not in ALGORITHMS:
            return "not an Ed25519 JWS"
        entry = self._key(str(header.get("kid", "")))
        if entry is None:
            return "signed by no live consumer key"
        if entry.policy != policy:
            return "signed by another consumer's key"
        try:
            entry.key.verify(signature, f"{header_b64}.{body_b64}".encode("ascii"))
        except InvalidSignature:
            return "signature does not verify"
        if not isinstance(body, dict) or body.get("alarm_id") != alarm_id:
            return "signed for another alarm"
        return None
