"""What each consumer receives: its minimised view of a lifecycle event, signed (compact JWS, Ed25519).

Per upstream (kernel/relay_settings.py `Upstream`): the location down to its level (community,
building or unit), readings from its allow-list, and the direct identifiers it is entitled
to sealed to its own X25519 key (privacy/seal.py: only its private key opens them). An
in-home device's id is a direct identifier: it is never sent in clear. Public-space devices
(fence zones, manhole covers) keep their public ids. Every message names the alarm id, the
event id (what a consumer deduplicates by), the lifecycle state, the severity, and the
fingerprints of the consumer's policy and of the relay rules it was minimised under.
"""

from __future__ import annotations

import binascii
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from kernel.relay_settings import Upstream
from privacy.jws import ALGORITHM
from privacy.keys import RELOAD_SECONDS, HubKeys, SigningKey
from privacy.policy import Basis
from privacy.seal import RELAY_FEED, Recipient, seal
from relay.alarms import device_is_direct
from relay.lifecycle import Alarm, LifecycleEvent

# `privacy.jws.canonical_json`'s encoding, with the encoder built once rather than per message.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
LEVELS = {"community": 0, "building": 1, "unit": 2}


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> str:
    """base64url without padding (`base64.urlsafe_b64encode`'s result, in one C call and a translate)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


class Signer:
    """Compact JWS over canonical JSON with the hub's key, verifiable by `privacy.jws.verify_json`.

    The header is encoded once: signing a relay message costs one Ed25519 signature.
    """

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        header = {"alg": ALGORITHM, "kid": key.kid, "typ": "JOSE"}
        self._header = _b64(json.dumps(header, separators=(",", ":")).encode())

    def sign(self, payload: dict[str, Any]) -> str:
        signing_input = f"{self._header}.{_b64(_CANONICAL.encode(payload).encode())}"
        return f"{signing_input}.{_b64(self.key.private.sign(signing_input.encode()))}"


class LiveSigner(Signer):
    """A Signer that follows `neuron keys rotate` without a restart (issue 17).

    At most once a second (RELOAD_SECONDS) it asks the hub's keys for the active signing key,
    which re-reads the signing index when its mtime moved; a new kid gets a new Signer, swapped
    in as one reference (a message signed meanwhile on another thread uses the old key and
    header together, never one with the other). The relay's hot path pays a monotonic clock
    read per message, nothing more.
    """

    def __init__(self, keys: HubKeys, clock: Callable[[], float] = time.monotonic) -> None:
        self._current = Signer(keys.active_signing_key)
        self._keys, self._clock = keys, clock
        self._checked = clock()

    @property
    def key(self) -> SigningKey:  # type: ignore[override]  # read-only here: the current Signer's
        return self._current.key

    def sign(self, payload: dict[str, Any]) -> str:
        now = self._clock()
        if now - self._checked >= RELOAD_SECONDS:
            self._checked = now
            key = self._keys.active_signing_key
            if key.kid != self._current.key.kid:
                self._current = Signer(key)
        return self._current.sign(payload)


@lru_cache(maxsize=4096)  # an event's moments repeat across its consumers' messages and the batch
def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


class SealCache:
    """Values sealed to consumers, found by a keyed hash of (recipient key, kind, value).

    Sealing is deterministic but costs an X25519 exchange (~0.14 ms here); a relay restarted
    during an incident would otherwise pay it for every device it hears from. Newly sealed
    values are handed to the next group commit (`take_fresh`) and loaded again at start-up.
    The hash is keyed with a key of its own, so the table holds nothing a value can be
    looked up by without the hub's keys.
    """

    LIMIT = 200_000  # in memory; beyond it, the cache starts again (the table keeps them all)

    def __init__(self, index_key: bytes, known: dict[str, str]) -> None:
        self.index_key = index_key
        self.known = known
        self._fresh: list[tuple[str, str, str]] = []

    def lookup(self, key_id: str, context: str, value: str) -> str:
        # "v2": values cached when sealing was the own ECIES (nhs1) are never found again.
        return hmac.new(self.index_key, f"v2\x1f{key_id}\x1f{context}\x1f{value}".encode(), "sha256").hexdigest()

    def sealed(self, value: str, recipient: Recipient, seal_key: bytes, context: str) -> str:
        lookup = self.lookup(recipient.key_id, context, value)
        found = self.known.get(lookup)
        if found is None:
            if len(self.known) >= self.LIMIT:
                self.known.clear()
            found = self.known[lookup] = seal(value, recipient, seal_key, context, feed=RELAY_FEED)
            self._fresh.append((lookup, recipient.key_id, found))
        return found

    def take_fresh(self) -> list[tuple[str, str, str]]:
        """What was sealed since the last call: (lookup, recipient key id, sealed value) rows."""
        fresh, self._fresh = self._fresh, []
        return fresh


@dataclass(frozen=True)
class Route:
    """One upstream as the relay publishes to it: rules, policy, sealing key."""

    upstream: Upstream
    policy_fingerprint: str
    policy_version: int
    recipient: Recipient | None
    seal_key: bytes  # the hub's key for deterministic sealing to this consumer
    rules_fingerprint: str = ""  # of the upstream's relay rules, computed once
    seals: SealCache | None = None  # shared by the relay's routes; None: no cache across restarts
    # The policy's legal basis per in-home category (relay/consent.py decides per alarm).
    basis: Mapping[str, Basis] = field(default_factory=dict)

    def wants(self, category: str) -> bool:
        cats = self.upstream.categories
        return cats is None or category in cats

    def sealed(self, value: str, context: str) -> str:
        """`value` sealed to this consumer (deterministic, so cached per value)."""
        assert self.recipient is not None
        if self.seals is None:
            return seal(value, self.recipient, self.seal_key, context, feed=RELAY_FEED)
        return self.seals.sealed(value, self.recipient, self.seal_key, context)

    def topic(self, district: str, alarm: Alarm) -> str:
        return self.upstream.topic.format(district=district, community=alarm.community_id, category=alarm.category)


def event_fields(event: LifecycleEvent, district: str) -> dict[str, Any]:
    """What every consumer's message about an event says alike (built once per event, not per consumer)."""
    a = event.alarm
    fields: dict[str, Any] = {
        "alarm_id": a.alarm_id,
        "event_id": event.event_id,
        "seq": a.events,
        "state": event.state,
        "severity": a.severity,
        "category": a.category,
        "family": a.family,
        "district": district,
        "detected_at": _iso(a.detected_at),
        "event_time": _iso(event.event_time),
        "issued_at": _iso(event.recorded_at),
        "escalated": a.escalated,
        "actor": event.actor if event.actor in ("device", "relay") else "consumer:" + event.actor,
    }
    if not device_is_direct(a.family):
        fields["device_id"] = a.device_id  # public-space devices: public ids
    return fields


def consumer_payload(
    event: LifecycleEvent, route: Route, district: str, common: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The event as this consumer may see it (before signing); `common` is `event_fields`."""
    a, up = event.alarm, route.upstream
    level = LEVELS[up.location]
    location: dict[str, Any] = {"community_id": a.community_id}
    if level >= 1 and a.building is not None:
        location["building"] = a.building
    if level >= 2 and a.unit is not None:
        location["unit"] = a.unit
    payload: dict[str, Any] = {
        **(common if common is not None else event_fields(event, district)),
        "location": location,
        "policy": route.policy_fingerprint,
        "policy_consumer": up.policy_name,
        "policy_version": route.policy_version,
        "relay_rules": route.rules_fingerprint,
    }
    readings = {k: v for k, v in a.readings.items() if k in up.readings}
    if readings:
        payload["readings"] = readings
    if route.recipient is not None:
        sealed = {}
        kept = a.sealed.get(up.name, {})  # sealed when the alarm was raised (raw ids are not kept)
        for name in up.seal:
            if name == "device_id" and "device_id" in payload:
                continue  # a public id, sent as it is
            value = a.raw.get(name)  # the room too: `room_no` itself is only its encrypted form
            if value is not None:
                sealed[name] = route.sealed(value, name)
            elif name in kept:
                sealed[name] = kept[name]
        if sealed:
            payload["sealed"] = sealed
    return payload


def escalation_notice(event: LifecycleEvent, signer: Signer) -> str:
    """What the property manager is told when an alarm escalates (unit level, no identifiers)."""
    a = event.alarm
    body = {
        "alarm_id": a.alarm_id,
        "event_id": event.event_id,
        "state": "escalated",
        "severity": a.severity,
        "category": a.category,
        "family": a.family,
        "location": {"community_id": a.community_id, "building": a.building, "unit": a.unit},
        "raised_at": _iso(a.raised_at),
        "escalated_at": _iso(event.recorded_at),
        "reason": "not acknowledged by any consumer before its deadline",
    }
    return signer.sign(body)


def quarantine_notice(kind: str, reason: str, family: str, size: int, digest: str, at: datetime, signer: Signer) -> str:
    """A rejected alarm, for the quarantine topic: the reason, never the payload's values."""
    body = {"rejected": kind, "reason": reason, "family": family, "bytes": size, "sha256": digest, "at": _iso(at)}
    return signer.sign(body)
