"""The relay's settings: the upstream brokers (one per consumer) and how alarms are handled.

Kept free of paho and SQLAlchemy so the hub's `Settings` can declare `relay: RelaySettings`
without slowing the command line. The community broker is the collector's (`[mqtt]`).

Minimisation lives here, per upstream, rather than in the consumers' policy files: a
policy grants batch feeds field by field (and its model forbids other keys), while a
relay message has its own small shape. Each upstream names the policy it is sent under;
the policy's fingerprint and a fingerprint of these relay rules go into every message.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

Location = Literal["community", "building", "unit"]
SEVERITIES = ("low", "medium", "high", "critical")

# Readings a consumer may receive with an alarm (public in the device contracts); heart
# rate is sensitive and stays out unless an upstream's rules name it.
DEFAULT_READINGS = ["smoke_obscuration_pct", "gas_lel_pct", "water_level_cm", "tilt_deg", "segment", "cover_type"]


class Upstream(BaseModel):
    """One consumer's broker and what its alarm messages carry."""

    name: str  # the consumer; also the `actor` of the acknowledgements that come back from it
    policy: str = ""  # the consumer policy the messages are sent under (default: `name`)
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    # Verified TLS by default (issue 17): certificate and host name checked against `ca_file`
    # or the system's CAs. Off only for a broker on this machine's loopback (the tests'
    # private mosquittos), where there is no network to protect.
    tls: bool = True
    ca_file: Path | None = None  # TLS trust anchor; default: the system's
    client_id: str = ""  # default: neuron-relay-{community}-{name}
    topic: str = "citybrain/{district}/{community}/alarm/{category}"
    ack_topic: str = "citybrain/{district}/{community}/alarm-ack/+"
    location: Location = "building"
    # Direct identifiers this consumer is entitled to, sealed to its X25519 key (never sent
    # in clear; dropped when no key is registered).
    seal: list[Literal["device_id", "household_id", "resident_id", "room_no"]] = []
    readings: list[str] = Field(default_factory=lambda: list(DEFAULT_READINGS))
    categories: list[str] | None = None  # None: every category
    # Acknowledgements must be a JWS by one of this consumer's registered keys (relay/acks.py);
    # off only for a consumer platform that cannot sign, whose broker ACL is then all that counts.
    ack_signed: bool = True

    @property
    def policy_name(self) -> str:
        return self.policy or self.name

    def rules_fingerprint(self) -> str:
        """A hash of the relay rules this upstream's messages are minimised under."""
        body = self.model_dump(include={"location", "seal", "readings", "categories", "topic"})
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _default_upstreams() -> list[Upstream]:
    return [
        Upstream(name="district"),
        Upstream(
            name="public_security",
            topic="police/{district}/{community}/alarm/{category}",
            ack_topic="police/{district}/{community}/alarm-ack/+",
            location="unit",
            seal=["device_id", "household_id", "room_no"],
        ),
    ]


class RelaySettings(BaseModel):
    """The relay: its session on the community broker, the upstreams, the lifecycle rules."""

    client_id: str = ""  # default: neuron-relay-{community}; stable, it names the persistent session
    # The relay's own session on the community broker. MQTT 3.1.1 by default: a persistent
    # session (clean session off, kept by the broker) is all the relay needs, and paho decodes an
    # MQTT 5 PUBLISH through property objects that cost about as much again as the rest of the
    # packet (40 µs of CPU per alarm here, bench/RESULTS.md). "5": as the hub's [mqtt] protocol says.
    community_protocol: Literal["3.1.1", "5"] = "3.1.1"
    quarantine_topic: str = "neuron/{community}/relay/quarantine"
    escalation_topic: str = "neuron/{community}/property-manager/alarm-escalation"
    max_payload_bytes: int = Field(4096, ge=256)
    # Acknowledgement deadlines by severity; an alarm not acknowledged in time escalates once.
    ack_deadline_seconds: dict[str, float] = {"critical": 120, "high": 300, "medium": 900, "low": 3600}
    # A detector that raises again within this long of clearing continues the same alarm (updated).
    flap_window_seconds: float = Field(300, ge=0)
    # Group commit: inbound alarms are committed (and only then acknowledged) in groups of at most
    # `commit_max_messages`. `commit_max_ms` is how long the worker waits for a group to fill.
    # 0 (the default) is natural batching: the worker takes whatever arrived while it was busy
    # with the last group, so a lone alarm is committed at once and groups grow with the load by
    # themselves. A fixed wait only added latency: at 1,000 alarms/s a 2 ms wait doubled p50 and
    # p99 (bench/RESULTS.md) for 25% less CPU per alarm.
    commit_max_messages: int = Field(500, ge=1)
    commit_max_ms: float = Field(0.0, ge=0)
    # SQLite only. "full": every group commit is fsynced before the inbound alarms are acknowledged
    # (durable against power loss). "normal" (WAL): durable against a crash or kill -9 of the relay,
    # but a power cut may lose the last commits. A 20-row commit with its fsync took 0.28 ms on
    # this machine's disk (2026-11-24); measure yours with `bench relay_latency`.
    sqlite_synchronous: Literal["full", "normal"] = "full"
    # The SQLite WAL size past which the relay rewinds it (relay/store.py; issue 17 D4). Each
    # rewind holds the committer for a RESTART checkpoint: a larger limit means fewer of those
    # pauses (every ~6 s at 300 alarms/s with 64 MB) for a larger file.
    sqlite_wal_limit_mb: int = Field(64, ge=1)
    inflight_per_upstream: int = Field(1000, ge=1)  # published, not yet acknowledged by the upstream
    # How often the rooms of the households are read again from the platform (relay/rooms.py).
    rooms_refresh_seconds: float = Field(600, gt=0)
    # How often the households' consents are read again from the consent store (relay/consent.py):
    # an in-home alarm sent on consent goes only from households that opted in.
    consent_refresh_seconds: float = Field(60, gt=0)
    seen_retention_hours: float = Field(48, gt=0)  # msg_ids remembered to drop redeliveries
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9108, ge=0, le=65535)  # 0: no /metrics endpoint
    drain_seconds: float = Field(10, ge=0)  # on SIGTERM: how long to wait for the outbox to empty
    upstreams: list[Upstream] = Field(default_factory=_default_upstreams)
    # Shards: relay processes that split the devices between them by a hash of the device (so
    # each device's alarms stay in order in one shard), each with its own MQTT sessions and its
    # own outbox rows; `neuron relay` starts them all. Every shard receives every alarm and
    # acknowledges at once those of devices it does not own. Changing the number of shards
    # re-assigns devices: stop the relay with its outbox drained first.
    shards: int = Field(1, ge=1, le=16)
    shard: int = Field(0, ge=0)  # this process's shard (set by `neuron relay` for each child)

    def deadline_for(self, severity: str) -> float:
        return self.ack_deadline_seconds.get(severity, 600.0)

    def community_client_id(self, community_id: str) -> str:
        return (self.client_id or f"neuron-relay-{community_id}") + self.shard_suffix

    @property
    def shard_suffix(self) -> str:
        """What names this shard's sessions and outbox rows apart ("" with a single process)."""
        return "" if self.shards == 1 else f"-s{self.shard}"
