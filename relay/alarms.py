"""The alarm contract: what a device alarm must look like to be relayed, and its classification.

A device alarm arrives on `neuron/{community}/{family}/{device}/alarm` as JSON that must fit
its family's stream contract (schemas/contracts/*.yaml: types, patterns, allowed values,
ranges). Devices do not sign their payloads, so the relay trusts what the broker binds — the
topic, which its ACLs tie to the device — over what the payload says: a payload that names
another device or community, or carries fields its frozen contract does not know, is
treated as tampered. Every rejection has a reason that names fields, never values.

Classification maps (family, alarm type) to one of the relayed categories and a severity on
the relay's scale (low < medium < high < critical): the higher of the category's floor and
the device's own severity. Equipment faults (low battery, a cut fence line, a lamp failure)
are valid but not urgent: they are not relayed (the batch streams keep them).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from kernel.errors import RecordError
from kernel.relay_settings import SEVERITIES
from privacy.deidentify import staging_key
from privacy.keys import HubKeys
from privacy.pseudonymise import pseudonym
from schemas.contract import Contract, ContractField, PrivacyClass, load_contract

# Family (topic segment) -> stream contract; the same families the collector routes.
FAMILY_STREAMS: dict[str, str] = {
    "nonmotor-gate": "nonmotor_passes",
    "fence": "fence_events",
    "home-safety": "home_safety",
    "wristband": "elderly_care",
    "environment": "environment",
    "streetlight": "streetlights",
    "manhole": "manhole_covers",
}

# (family, device alarm type) -> (category, severity floor)
CATEGORIES: dict[tuple[str, str], tuple[str, str]] = {
    ("home-safety", "smoke"): ("smoke", "critical"),
    ("home-safety", "gas"): ("gas", "critical"),
    ("fence", "intrusion"): ("fence_intrusion", "high"),
    ("wristband", "fall"): ("fall", "critical"),
    ("wristband", "sos"): ("sos", "critical"),
    ("wristband", "heart_rate_high"): ("heart_rate", "high"),
    ("wristband", "heart_rate_low"): ("heart_rate", "high"),
    ("manhole", "open"): ("manhole_open", "medium"),
    ("manhole", "tilt"): ("manhole_tilt", "medium"),
    ("manhole", "water_level"): ("water_level", "medium"),
}
DEVICE_SEVERITY = {"minor": "low", "major": "high", "critical": "critical"}
# Fields the hub derives from the topic or its own clock: a payload may echo them, no more.
HUB_FIELDS = {"community_id", "kind", "received_at"}
ALARM_FIELDS = ("msg_id", "alarm_id", "alarm_type", "alarm_state", "event_time")


class Rejection(RecordError):
    """An alarm that cannot be relayed; `kind` is oversized | malformed | tampered."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind, self.reason = kind, reason


@dataclass(frozen=True)
class DeviceAlarm:
    """A valid, classified device alarm (raw identifiers included: they never leave unsealed)."""

    msg_key: str  # hash of (topic, msg_id): recognises a redelivery or a device's resend
    community_id: str
    family: str
    device_id: str
    device_is_direct: bool  # an in-home device, bound to a household or a person
    source_alarm_id: str
    category: str
    severity: str
    state: str  # raised | cleared (the device's view)
    event_time: datetime
    building: str | None = None
    unit: str | None = None
    identifiers: dict[str, str] = field(default_factory=dict)  # household_id, resident_id (raw)
    readings: dict[str, Any] = field(default_factory=dict)


def severity_max(*levels: str) -> str:
    """The highest of some severities on the relay's scale."""
    return max(levels, key=SEVERITIES.index)


def severity_up(level: str) -> str:
    """One step up the scale (critical stays critical)."""
    return SEVERITIES[min(SEVERITIES.index(level) + 1, len(SEVERITIES) - 1)]


@cache
def device_is_direct(family: str) -> bool:
    """Whether a family's device id is a direct identifier (an in-home device bound to people)."""
    stream = FAMILY_STREAMS.get(family)
    return stream is None or contract(stream).field("device_id").privacy is PrivacyClass.DIRECT


class DeviceTokens:
    """The id the relay stores for a device: for an in-home device, the hub's staging token (the
    same token as the device's batch stream in staging, so history joins); otherwise its public id.
    Cached per device: an HMAC per alarm is wasted work on the relay's hot path."""

    def __init__(self, keys: HubKeys) -> None:
        self.keys = keys
        self._tokens: dict[str, str] = {}
        self._staging_keys: dict[Any, bytes] = {}

    def __call__(self, family: str, device_id: str) -> str:
        if not device_is_direct(family):
            return device_id
        token = self._tokens.get(device_id)
        if token is None:
            kind = contract(FAMILY_STREAMS[family]).field("device_id").identifier_kind
            key = self._staging_keys.get(kind)
            if key is None:
                key = self._staging_keys[kind] = staging_key(self.keys, kind)
            token = self._tokens[device_id] = pseudonym(key, device_id)
        return token

    def of(self, alarm: DeviceAlarm) -> str:
        return self(alarm.family, alarm.device_id)


def relay_id_key(keys: HubKeys) -> bytes:
    """The key of the ids the relay derives from raw identifiers (alarm ids, message keys).

    The topic carries the in-home device id and the alarm id is made from it: an unkeyed
    hash of an enumerable id is the id (hash every device id the vendor could issue and
    compare), so both are HMAC-SHA256 under a key derived from the master secret (issue 16).
    """
    return keys.derive("relay", "identifiers")


def msg_key(key: bytes, topic: str, msg_id: str) -> str:
    """A delivery's key (topic and msg_id), to recognise a redelivery or a device's resend."""
    return hmac.digest(key, f"{topic}\x1f{msg_id}".encode(), "sha256").hex()[:32]


@cache
def contract(stream: str) -> Contract:
    """A stream's contract, parsed once per process (its YAML costs more than relaying an alarm)."""
    return load_contract(stream)


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


Check = Callable[[Any], "str | None"]


@cache
def contract_shape(stream: str) -> tuple[frozenset[str], tuple[tuple[str, Check], ...], tuple[str, ...]]:
    """A contract's field names, a check per field a payload is checked against, its direct
    identifiers other than the device id (computed once per stream, not per alarm)."""
    terms = contract(stream)
    known = frozenset(f.name for f in terms.fields)
    checks = tuple((f.name, _compile(f)) for f in terms.fields if f.name not in HUB_FIELDS)
    direct = tuple(f.name for f in terms.direct_fields() if f.name != "device_id")
    return known, checks, direct


def _compile(f: ContractField) -> Check:
    """What is wrong with one value against its contract field (None: nothing), as a function
    that tests only what the field declares: contract checks run a dozen times per alarm."""
    nullable, kind, c = f.nullable, f.type, f.checks
    match = _pattern(c.pattern).fullmatch if c.pattern is not None else None
    allowed = frozenset(c.allowed) if c.allowed is not None else None
    low, high = c.min, c.max

    def check(value: Any) -> str | None:
        if value is None:
            return None if nullable else "is null"
        if kind == "string":
            if not isinstance(value, str):
                return "is not a string"
        elif kind == "bool":
            if not isinstance(value, bool):
                return "is not a boolean"
        elif kind in ("int64", "float64"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return "is not a number"
            if kind == "int64" and not float(value).is_integer():
                return "is not an integer"
            if (low is not None and value < low) or (high is not None and value > high):
                return "is out of range"
        elif kind == "timestamp":
            problem = _timestamp_problem(value)
            if problem:
                return problem
        if match is not None and not match(str(value)):
            return "does not match its pattern"
        if allowed is not None and str(value) not in allowed:
            return "is not an allowed value"
        return None

    return check


def _timestamp_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "is not a timestamp"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return "is not an ISO 8601 timestamp"
    return "has no UTC offset" if parsed.tzinfo is None else None


def parse_alarm(topic: str, payload: bytes, community_id: str, max_bytes: int, id_key: bytes) -> DeviceAlarm | None:
    """The classified alarm, None for a valid alarm that is not relayed, or Rejection."""
    if len(payload) > max_bytes:
        raise Rejection("oversized", f"{len(payload)} bytes, over the {max_bytes}-byte limit")
    parts = topic.split("/")
    if len(parts) != 5 or parts[4] != "alarm" or not parts[3]:
        raise Rejection("malformed", "topic is not prefix/community/family/device/alarm")
    _, topic_community, family, device, _ = parts
    if topic_community != community_id:
        raise Rejection("malformed", "topic names another community")
    stream = FAMILY_STREAMS.get(family)
    if stream is None:
        raise Rejection("malformed", "unknown device family")
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        raise Rejection("malformed", "payload is not JSON") from None
    if not isinstance(body, dict):
        raise Rejection("malformed", "payload is not a JSON object")
    known, checks, direct = contract_shape(stream)
    unknown = sorted(set(body) - known)
    if unknown:
        # Frozen contracts: an unannounced field could carry anything, including identifiers.
        raise Rejection("tampered", f"fields outside the {stream} contract: {', '.join(unknown[:5])}")
    if body.get("device_id") != device:
        raise Rejection("tampered", "payload device_id differs from the topic's device")
    if body.get("community_id", community_id) != community_id:
        raise Rejection("tampered", "payload community_id differs from the topic's community")
    if body.get("kind", "alarm") != "alarm":
        raise Rejection("tampered", "payload kind is not alarm")
    for name in ALARM_FIELDS:
        if name in known and body.get(name) in (None, ""):
            raise Rejection("malformed", f"missing field {name}")
    get = body.get
    for name, check in checks:
        problem = check(get(name))
        if problem:
            raise Rejection("malformed", f"field {name} {problem}")
    alarm_type = body.get("alarm_type")
    classified = CATEGORIES.get((family, str(alarm_type)))
    if classified is None:
        return None
    category, floor = classified
    severity = severity_max(floor, DEVICE_SEVERITY.get(str(body.get("severity")), "low"))
    identifiers = {name: str(body[name]) for name in direct if body.get(name) is not None}
    structural = {*HUB_FIELDS, *ALARM_FIELDS, "device_id", "severity", "building", "unit", *identifiers}
    readings = {k: v for k, v in body.items() if k not in structural and v is not None}
    return DeviceAlarm(
        msg_key=msg_key(id_key, topic, str(body["msg_id"])),
        community_id=community_id,
        family=family,
        device_id=device,
        device_is_direct=device_is_direct(family),
        source_alarm_id=str(body["alarm_id"]),
        category=category,
        severity=severity,
        state=str(body["alarm_state"]),
        event_time=datetime.fromisoformat(body["event_time"]),
        building=None if body.get("building") is None else str(body["building"]),
        unit=None if body.get("unit") is None else str(body["unit"]),
        identifiers=identifiers,
        readings=readings,
    )
