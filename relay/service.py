"""The relay: community broker → classify → lifecycle → minimise and sign → outbox → upstreams.

Threads: paho's network threads only buffer what arrives (device alarms from the community
broker, acknowledgements from the consumers' brokers); the worker takes the buffer in
group commits (whatever arrived while it was busy, relay/intake.py), records each alarm's lifecycle
event, its signed messages for every destination and its msg_id in one transaction, and
only then acknowledges the inbound messages (paho's manual acknowledgement). Killed at any
instant, the relay leaves every unacknowledged alarm with the broker (a persistent MQTT 5
session), which redelivers it; one already recorded is recognised by its msg_id and only
acknowledged. One publisher thread per destination drains the outbox (relay/destinations.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt

from kernel.errors import ConfigError
from kernel.logging import flush_logs
from kernel.relay_settings import RelaySettings
from kernel.settings import Settings
from privacy.keys import HubKeys
from privacy.policy import RELAY_IN_HOME, Basis, load_policies
from privacy.room_cipher import RoomCipher
from relay.acks import AckVerifier
from relay.alarms import (
    FAMILY_STREAMS,
    DeviceTokens,
    Rejection,
    contract_shape,
    msg_key,
    parse_alarm,
    relay_id_key,
)
from relay.alert_outbox import TOPIC as ALERT_TOPIC
from relay.alert_outbox import alert_outboxes, alert_state
from relay.consent import ConsentGate, HouseholdTokens
from relay.destinations import Destination, connect, upstream_client, wait_for
from relay.intake import Intake
from relay.lifecycle import LifecycleEvent, Lifecycles
from relay.messages import (
    LiveSigner,
    Route,
    SealCache,
    Signer,
    consumer_payload,
    escalation_notice,
    event_fields,
    quarantine_notice,
)
from relay.metrics import RelayMetrics
from relay.rooms import RoomDirectory
from relay.store import Commit, Pending, RelayStore
from transport.mqtt import acknowledge, connect_persistent, mqtt_client
from transport.mqtt_socket import BufferedClient
from warehouse.consent import consenting_households
from warehouse.recipients import recipients_by_policy

log = logging.getLogger(__name__)
COMMUNITY = "community"  # the destination name of the community broker (quarantine, property manager)
Clock = Callable[[], datetime]


def _relay_basis(upstream: str, categories: list[str] | None, policy: Any) -> dict[str, Basis]:
    """The basis the upstream's policy states per in-home category it receives; ConfigError (one
    line: file, what to add) when it receives such alarms and the policy states none."""
    wanted = [c for c in RELAY_IN_HOME if categories is None or c in categories]
    basis = {c: b for c in wanted if (b := policy.relay_basis(c)) is not None}
    missing = [c for c in wanted if c not in basis]
    if missing:
        raise ConfigError(
            f"{policy.source or policy.consumer}:1: relay upstream {upstream!r} receives in-home alarms "
            f"({', '.join(missing)}) but the policy states no legal basis for them: add "
            "`relay: {basis: {smoke: vital_interest, gas: vital_interest, fall: vital_interest, sos: consent, "
            "heart_rate: consent}}` (consent, or vital_interest for a live smoke, gas or fall alarm)"
        )
    return basis


def _receive_maximum(properties: Any) -> int | None:
    """The broker's Receive Maximum (MQTT 5 CONNACK): how many QoS 1 messages it takes in flight."""
    value = getattr(properties, "ReceiveMaximum", None)
    return int(value) if value else None


def _overlong_non_alarm(topic: str) -> bool:
    """A topic of six levels or more that is not an alarm (the over-long filter's by-catch)."""
    return topic.count("/") > 4 and not topic.endswith("/alarm")


@dataclass(frozen=True)
class Inbound:
    """A message as paho's network thread buffered it."""

    upstream: str | None  # None: a device alarm from the community broker; else an ack from this upstream
    topic: str
    payload: bytes
    received: float  # epoch seconds
    client: mqtt.Client
    mid: int
    qos: int
    generation: int


@dataclass
class RelayStats:
    """Counts of one run (no topic or payload)."""

    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    not_relayed: int = 0
    rejected: int = 0
    acks: int = 0
    acks_refused: int = 0
    stale: int = 0
    unsafe_names: int = 0  # alarms quarantined for a device id that is not a safe topic name
    events: int = 0
    published: int = 0
    connects: int = 0
    deadline_checks: int = 0


class Relay:
    """One relay process's connections, lifecycle state and worker loop."""

    def __init__(
        self,
        settings: Settings,
        config: RelaySettings | None = None,
        clock: Clock | None = None,
        keys: HubKeys | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or settings.relay
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.community_id = settings.community_id
        self.mqtt = settings.mqtt
        self.store = RelayStore(
            settings.control_url, self.config.sqlite_synchronous, self.config.sqlite_wal_limit_mb * 1024 * 1024
        )
        self.keys = keys or HubKeys.load(settings)
        self.device_tokens = DeviceTokens(self.keys)
        self.id_key = relay_id_key(self.keys)
        self.signer: Signer = LiveSigner(self.keys)  # follows a rotation without a restart
        self.consents = ConsentGate(
            lambda function: consenting_households(settings, function), self.config.consent_refresh_seconds
        )
        self.routes = self._routes()
        self._upstreams = {route.upstream.name: route.upstream for route in self.routes}
        self.acks = AckVerifier(settings.control_url)
        self.stats = RelayStats()
        suffix = self.config.shard_suffix
        # Outbox rows are named by destination and shard: each shard's publishers read only its own.
        self.outbox_of = {name: name + suffix for name in [COMMUNITY, *(r.upstream.name for r in self.routes)]}
        self.metrics = RelayMetrics(self.depth)
        self.alert_outboxes = alert_outboxes(settings)  # consumers' NGSI-LD brokers (neuron push sends them)
        self.alert_basis = self._alert_basis()
        self.rooms = RoomDirectory(settings.platform, self.community_id, self.config.rooms_refresh_seconds)
        self.room_cipher = RoomCipher(self.keys, self.community_id)
        self.lifecycles = Lifecycles(
            self.config.deadline_for,
            timedelta(seconds=self.config.flap_window_seconds),
            self.device_tokens.of,
            self.id_key,
            room_of=lambda alarm: self.rooms.room_of(alarm.identifiers.get("household_id")),
            store_room=self.room_cipher.encrypt,
            household_of=HouseholdTokens(self.keys),
        )
        for stream in FAMILY_STREAMS.values():
            _ = contract_shape(stream)  # parsed now, not by the first alarm of each family (~50 ms of YAML)
        self._seen: dict[str, float] = {}
        self.intake: Intake[Inbound] = Intake(
            lambda item: item.received, self.config.commit_max_messages, self.config.commit_max_ms / 1000
        )
        self._cond = self.intake.cond  # also guards the connection generations
        self._published_lock = threading.Lock()
        self._published: list[int] = []
        # Group commits from the worker to the committer; bounded, so a slow disk slows intake.
        self._commits: queue.Queue[tuple[Commit, list[Inbound]] | None] = queue.Queue(maxsize=4)
        self._committer = threading.Thread(target=self._commit_loop, name="relay-committer", daemon=True)
        self.committer_error: BaseException | None = None
        self._generation: dict[int, int] = {}  # id(client) -> connection generation
        self._connected = threading.Event()
        self._stopping = False
        self._last_prune = 0.0
        # The relay's session speaks MQTT 5 only if both the hub's broker and `community_protocol` do.
        protocol = "3.1.1" if self.mqtt.protocol == "3.1.1" else self.config.community_protocol
        self.community_mqtt = self.mqtt.model_copy(update={"protocol": protocol})
        client_id = self.config.community_client_id(self.community_id)
        self.community = mqtt_client(self.community_mqtt, client_id, manual_ack=True)
        self.community.on_connect = self._on_community_connect
        self.community.on_disconnect = self._on_disconnect_of(COMMUNITY)
        self.community.on_message = self._on_message_of(None)
        self._foreign: list[int] = []  # other shards' alarms read in this pass (network thread only)
        self.community.after_read = self._ack_foreign
        # Connected means subscribed: only after the SUBACK is every later alarm kept for us.
        self.community.on_subscribe = self._on_community_subscribe
        self.destinations: dict[str, Destination] = {}
        self.upstream_clients: dict[str, BufferedClient] = {}
        for route in self.routes:
            up = route.upstream
            client = upstream_client(up, self.community_id, self.mqtt.session_expiry_seconds, suffix)
            client.on_connect = self._on_upstream_connect_of(up.name, up.ack_topic)
            client.on_disconnect = self._on_disconnect_of(up.name)
            client.on_message = self._on_message_of(up.name)
            self.upstream_clients[up.name] = client
            self.destinations[up.name] = self._destination(up.name, client)
        self.destinations[COMMUNITY] = self._destination(COMMUNITY, self.community)
        self._by_outbox = {self.outbox_of[name]: dest for name, dest in self.destinations.items()}

    # --- set-up -------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        policies = load_policies(self.settings.policies_dir)
        recipients = recipients_by_policy(self.settings)
        routes = []
        key_ids = [r.key_id for r in recipients.values() if r is not None]
        self.seals = SealCache(
            self.keys.derive("relay-seal-index", self.community_id), self.store.sealed_values(key_ids)
        )
        for up in self.config.upstreams:
            policy = policies.get(up.policy_name)
            if policy is None:
                # Nothing leaves that a policy does not name: an upstream needs its consumer's policy.
                raise ConfigError(f"relay upstream {up.name!r}: no sharing policy for consumer {up.policy_name!r}")
            if up.name == COMMUNITY:
                raise ConfigError(f"relay upstream name {COMMUNITY!r} is reserved for the community broker")
            recipient = recipients.get(policy.consumer)
            if up.seal and recipient is None:
                log.warning("relay: %s has no encryption key registered; its sealed fields are left out", up.name)
            seal_key = self.keys.derive("seal", policy.consumer)
            rules = up.rules_fingerprint()
            basis = _relay_basis(up.name, up.categories, policy)
            routes.append(Route(up, policy.fingerprint, policy.version, recipient, seal_key, rules, self.seals, basis))
        return routes

    def _alert_basis(self) -> dict[str, dict[str, Basis | None]]:
        """Per NGSI-LD alert outbox, the basis its consumer's policy states for `safety.alarms`'
        in-home categories: the Alert entities carry what that feed would."""
        pushes = getattr(getattr(self.settings, "push", None), "ngsi_ld", None) or []
        policies = load_policies(self.settings.policies_dir)
        out: dict[str, dict[str, Basis | None]] = {}
        for push in pushes:
            if push.alerts:
                policy = policies.get(push.policy_name)
                out[push.alert_outbox] = {
                    c: None if policy is None else policy.feed_basis("safety.alarms", c) for c in RELAY_IN_HOME
                }
        return out

    def _destination(self, name: str, client: BufferedClient) -> Destination:
        dest = Destination(
            self.outbox_of[name], client, self.store, self.config.inflight_per_upstream, self._on_published
        )
        return dest

    def device_token(self, family: str, device_id: str) -> str:
        """The id the relay stores for a device (`DeviceTokens`)."""
        return self.device_tokens(family, device_id)

    def owns(self, topic: str) -> bool:
        """Whether this shard relays an alarm on `topic`: by a hash of its device's stored id (so the
        open alarms loaded at start-up are assigned alike); a topic naming no known device family
        by a hash of the topic, so exactly one shard quarantines it."""
        if self.config.shards == 1:
            return True
        parts = topic.split("/")
        if len(parts) == 5 and parts[2] in FAMILY_STREAMS and parts[3]:
            return self.owns_device(self.device_token(parts[2], parts[3]))
        return zlib.crc32(topic.encode()) % self.config.shards == self.config.shard

    def owns_device(self, stored_id: str) -> bool:
        return zlib.crc32(stored_id.encode()) % self.config.shards == self.config.shard

    def depth(self) -> int:
        """This relay's (shard's) outbox rows not yet acknowledged by their broker."""
        return self.store.depth(list(self.outbox_of.values()))

    # --- paho's network threads ---------------------------------------------------------------

    def _bump(self, client: mqtt.Client) -> None:
        with self._cond:
            self._generation[id(client)] = self._generation.get(id(client), 0) + 1

    def _on_community_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("relay: community broker refused the connection (%s)", reason)
            return
        self._bump(client)
        self.stats.connects += 1
        self.metrics.reconnects.labels(COMMUNITY).inc()
        self.destinations[COMMUNITY].connected(_receive_maximum(_p))
        log.info("relay: connected to the community broker (session present: %s)", bool(flags.session_present))
        base = f"{self.mqtt.topic_prefix}/{self.community_id}"
        # The second filter matches only topics of six levels or more: an alarm whose device id
        # holds "/" lands there, where no consumer listens; the relay quarantines it (D8) and
        # acknowledges anything else there unread (telemetry is the collector's).
        client.subscribe([(f"{base}/+/+/alarm", 1), (f"{base}/+/+/+/+/#", 1)])

    def _on_community_subscribe(self, *_: Any) -> None:
        log.info("relay: subscribed to the community's alarm topics")
        self._connected.set()

    def _on_upstream_connect_of(self, name: str, ack_topic: str) -> Callable[..., None]:
        topic = ack_topic.format(district=self.settings.district, community=self.community_id)

        def on_connect(client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                log.warning("relay: the %s broker refused the connection (%s)", name, reason)
                return
            self._bump(client)
            self.metrics.reconnects.labels(name).inc()
            log.info("relay: connected to the %s broker", name)
            self.destinations[name].connected(_receive_maximum(_p))
            client.subscribe(topic, qos=1)

        return on_connect

    def _on_disconnect_of(self, name: str) -> Callable[..., None]:
        def on_disconnect(client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            self._bump(client)
            if name == COMMUNITY:
                self._connected.clear()
            if not self._stopping:
                log.warning("relay: disconnected from the %s broker (%s); reconnecting", name, reason)

        return on_disconnect

    def _on_message_of(self, upstream: str | None) -> Callable[..., None]:
        def on_message(client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
            if self._stopping:
                return  # not buffered, so never acknowledged: the broker redelivers it to the next run
            topic = bytes(message._topic).decode("utf-8", errors="replace")  # message.topic raises on bad UTF-8
            if upstream is None and (not self.owns(topic) or _overlong_non_alarm(topic)):
                # Another shard's device: that shard has its own subscription and copy of it.
                # Acknowledged together after this read pass (`_ack_foreign`), one write for all.
                if message.qos == 1:
                    self._foreign.append(message.mid)
                return
            with self._cond:
                item = Inbound(
                    upstream,
                    topic,
                    bytes(message.payload),
                    time.time(),
                    client,
                    message.mid,
                    message.qos,
                    self._generation.get(id(client), 0),
                )
                self.intake.put(item)

        return on_message

    def _ack_foreign(self) -> None:
        if self._foreign:
            mids, self._foreign = self._foreign, []
            acknowledge(self.community, mids)

    def _on_published(self, destination: str, seqs: list[int], created: list[float]) -> None:
        now = time.time()
        histogram = self.metrics.latency.labels(destination)
        for at in created:
            histogram.observe(max(0.0, now - at))
        self.metrics.published.labels(destination).inc(len(seqs))
        with self._published_lock:
            self._published += seqs
            self.stats.published += len(seqs)

    # --- the worker ---------------------------------------------------------------------------

    def _record(self, event: LifecycleEvent, commit: Commit, created: datetime) -> None:
        commit.events.append(event.row())
        self.stats.events += 1
        self.metrics.events.labels(event.state).inc()
        district = self.settings.district
        common = event_fields(event, district)
        for route in self.routes:
            if route.wants(event.alarm.category) and self.consents.allows(
                event.alarm, route.basis.get(event.alarm.category)
            ):
                payload = consumer_payload(event, route, district, common)
                sealed = payload.get("sealed")
                if sealed and event.alarm.sealed.get(route.upstream.name) != sealed:
                    # Kept with the alarm for its events after a restart. The snapshot shares this
                    # dict with the live alarm, so both see it.
                    event.alarm.sealed[route.upstream.name] = sealed
                topic, message = route.topic(district, event.alarm), self.signer.sign(payload)
                commit.outbox.append(
                    {
                        "destination": self.outbox_of[route.upstream.name],
                        "topic": topic,
                        "payload": message,
                        "alarm_id": event.alarm.alarm_id,
                        "created_at": created,
                    }
                )
        if self.alert_outboxes:
            state = alert_state(event)
            for outbox in self.alert_outboxes:
                basis = self.alert_basis.get(outbox, {}).get(event.alarm.category)
                if not self.consents.allows(event.alarm, basis):
                    continue
                commit.outbox.append(
                    {
                        "destination": outbox,
                        "topic": ALERT_TOPIC,
                        "payload": state,
                        "alarm_id": event.alarm.alarm_id,
                        "created_at": created,
                    }
                )
        commit.alarm(event.alarm, is_new=event.state == "raised")  # after `sealed` is complete
        if event.state == "escalated":
            topic = self.config.escalation_topic.format(community=self.community_id)
            notice = escalation_notice(event, self.signer)
            commit.outbox.append(
                {
                    "destination": self.outbox_of[COMMUNITY],
                    "topic": topic,
                    "payload": notice,
                    "alarm_id": event.alarm.alarm_id,
                    "created_at": created,
                }
            )

    def _ack_refused(self, item: Inbound, alarm_id: str, commit: Commit, in_batch: set[str]) -> bool:
        """Whether a consumer's acknowledgement is refused: unsigned, not by its own live key, stale
        or replayed (acks.py). An accepted one's `jti` is remembered with the inbound message keys
        (kept `seen_retention_hours`, far longer than an ack's freshness window), so it survives a
        restart of the relay."""
        upstream = self._upstreams[str(item.upstream)]
        if not upstream.ack_signed:
            return False
        reason, claims = self.acks.check(item.payload, alarm_id, upstream.policy_name)
        if claims is not None:
            key = "ack:" + msg_key(self.id_key, claims.kid, claims.jti)[:28]
            if key in self._seen or key in in_batch:
                reason = "replayed (its jti was seen before)"
            else:
                in_batch.add(key)
                commit.seen.append({"msg_key": key, "seen_at": self.clock()})
        if reason is None:
            return False
        self.stats.acks_refused += 1
        self.metrics.rejections.labels("acknowledgement").inc()
        log.warning("relay: refused an acknowledgement from the %s broker (%s)", upstream.name, reason)
        return True

    def _reject(self, item: Inbound, rejection: Rejection, commit: Commit, now: datetime) -> None:
        parts = item.topic.split("/")
        family = parts[2] if len(parts) > 2 and parts[2] in FAMILY_STREAMS else "unknown"
        digest = hashlib.sha256(item.payload).hexdigest()
        notice = quarantine_notice(
            rejection.kind, rejection.reason, family, len(item.payload), digest, now, self.signer
        )
        commit.outbox.append(
            {
                "destination": self.outbox_of[COMMUNITY],
                "topic": self.config.quarantine_topic.format(community=self.community_id),
                "payload": notice,
                "alarm_id": None,
                "created_at": datetime.fromtimestamp(item.received, UTC),
            }
        )
        self.stats.rejected += 1
        if rejection.kind == "unsafe":
            self.stats.unsafe_names += 1
        self.metrics.rejections.labels(rejection.kind).inc()
        self.metrics.inbound.labels("rejected").inc()
        # The reason names fields, never values; the device is named only by its family.
        log.warning("relay: rejected a %s alarm to quarantine (%s: %s)", family, rejection.kind, rejection.reason)

    def _process(self, batch: list[Inbound]) -> None:
        commit = Commit()
        now = self.clock()
        in_batch: set[str] = set()
        for item in batch:
            created = datetime.fromtimestamp(item.received, UTC)
            if item.upstream is not None:
                self.stats.acks += 1
                alarm_id = item.topic.rsplit("/", 1)[-1]
                if self._ack_refused(item, alarm_id, commit, in_batch):
                    continue
                ack = self.lifecycles.on_ack(alarm_id, item.upstream, now)
                if ack is not None:
                    self._record(ack, commit, datetime.now(UTC))
                continue
            self.stats.received += 1
            try:
                alarm = parse_alarm(
                    item.topic, item.payload, self.community_id, self.config.max_payload_bytes, self.id_key
                )
            except Rejection as rejection:
                self._reject(item, rejection, commit, now)
                continue
            if alarm is None:
                self.stats.not_relayed += 1
                self.metrics.inbound_not_relayed.inc()
                continue
            if alarm.msg_key in self._seen or alarm.msg_key in in_batch:
                self.stats.duplicates += 1  # a redelivery or a device's resend: acknowledged only
                self.metrics.inbound_duplicate.inc()
                continue
            in_batch.add(alarm.msg_key)
            commit.seen.append({"msg_key": alarm.msg_key, "seen_at": now})
            stale = self.lifecycles.stale
            event = self.lifecycles.on_device(alarm, now)
            self.stats.recorded += 1
            if self.lifecycles.stale != stale:
                self.stats.stale += 1  # older by its device's clock than the last applied (D7)
                self.metrics.inbound_stale.inc()
                log.info("relay: dropped a late %s %s (older by its device's clock)", alarm.family, alarm.state)
            if event is not None:
                self._record(event, commit, created)
        if in_batch:
            self.metrics.inbound_recorded.inc(len(in_batch))  # once per group, not per alarm
        self.stats.deadline_checks += 1
        for event in self.lifecycles.due(now):
            self._record(event, commit, datetime.now(UTC))
        for dest in self.destinations.values():
            dest.settle()
        with self._published_lock:
            commit.published, self._published = self._published, []
        commit.sealed = self.seals.take_fresh()
        stamp = time.time()
        for key in in_batch:  # seen from now on: a copy in a later batch commits after this one
            self._seen[key] = stamp
        while True:  # bounded queue: wait for the committer, unless it has failed
            try:
                self._commits.put((commit, batch), timeout=0.5)
                return
            except queue.Full:
                self._check_publishers()

    def _commit_loop(self) -> None:
        """The committer thread: write each group commit, then acknowledge what it covered.

        Apart from the worker, so the worker prepares the next batch while SQLite fsyncs this
        one; one thread and a FIFO queue keep commits (and acknowledgements) in order. Groups
        that queued up while a write was in progress go into one transaction together: a
        commit's fixed cost (its WAL pages and fsync, ~1 ms of CPU here) is then paid once per
        write rather than once per group, so a burst costs fewer commits, not a longer queue.
        """
        try:
            while True:
                jobs = [self._commits.get()]
                while jobs[-1] is not None:
                    try:
                        jobs.append(self._commits.get_nowait())
                    except queue.Empty:
                        break
                try:
                    done = [job for job in jobs if job is not None]
                    if done:
                        self._write([commit for commit, _ in done], [item for _, b in done for item in b])
                    if jobs[-1] is None:
                        return
                finally:
                    for _ in jobs:
                        self._commits.task_done()
        except BaseException as exc:  # surfaced by the worker, which stops the relay
            log.exception("relay: a commit failed; stopping (unacknowledged alarms stay with the broker)")
            self.committer_error = exc

    def _write(self, commits: list[Commit], batch: list[Inbound]) -> None:
        """One transaction for `commits` (in order); then hand the rows to the publishers and
        acknowledge the inbound messages they cover."""
        commit = Commit.merged(commits)
        written = self.store.write(commit) if commit else []
        by_destination: dict[str, list[Pending]] = {}
        for name, row in written:
            by_destination.setdefault(name, []).append(row)
        for name, rows in by_destination.items():
            if name in self._by_outbox:  # the others (ngsi-ld:…) are read by `neuron push`
                self._by_outbox[name].offer(rows)
        self._acknowledge(batch)

    def _acknowledge(self, batch: list[Inbound]) -> None:
        """Acknowledge what the commit covered, on the connection each message came on."""
        by_client: dict[int, tuple[mqtt.Client, list[int]]] = {}
        with self._cond:
            for item in batch:
                if item.qos == 1 and self._generation.get(id(item.client), 0) == item.generation:
                    by_client.setdefault(id(item.client), (item.client, []))[1].append(item.mid)
        for client, mids in by_client.values():
            acknowledge(client, mids)

    def _housekeeping(self) -> None:
        if time.monotonic() - self._last_prune < 60:
            return
        self._last_prune = time.monotonic()
        keep = self.config.seen_retention_hours * 3600
        cutoff = time.time() - keep
        self._seen = {k: v for k, v in self._seen.items() if v >= cutoff}
        self.store.prune_seen(datetime.now(UTC) - timedelta(seconds=keep) - timedelta(minutes=5))
        self.lifecycles.prune(self.clock())

    def _check_publishers(self) -> None:
        if self.committer_error is not None:
            raise RuntimeError("relay: the committer failed") from self.committer_error
        for dest in self.destinations.values():
            if dest.error is not None:
                raise RuntimeError(f"relay: the publisher for {dest.name} failed") from dest.error

    def run(self, stop: threading.Event) -> RelayStats:
        """Relay until `stop` is set; then drain in-flight work and disconnect."""
        now = self.clock()
        retention = timedelta(hours=self.config.seen_retention_hours)
        opened = self.store.open_alarms(now, timedelta(seconds=self.config.flap_window_seconds))
        self.lifecycles.load([a for a in opened if self.config.shards == 1 or self.owns_device(a.device_id)])
        seen_at = time.time()
        self._seen = dict.fromkeys(self.store.seen_since(datetime.now(UTC) - retention), seen_at)
        log.info(
            "relay: starting (shard %d of %d, %d open alarms, %d upstreams, outbox depth %d)",
            self.config.shard + 1,
            self.config.shards,
            len(self.lifecycles.by_id),
            len(self.routes),
            self.depth(),
        )
        if self.config.metrics_port:
            try:
                self.metrics.serve(self.config.metrics_host, self.config.metrics_port + self.config.shard)
            except OSError as exc:  # alarms matter more than their metrics: relay anyway
                log.error("relay: cannot serve /metrics on port %d (%s)", self.config.metrics_port, exc.strerror)
        self.rooms.start()
        self._committer.start()
        checkpoints_done = threading.Event()
        checkpointer = threading.Thread(
            target=self._checkpoint_loop, args=(checkpoints_done,), name="relay-checkpointer", daemon=True
        )
        checkpointer.start()
        for dest in self.destinations.values():
            dest.start()
        for route in self.routes:
            up = route.upstream
            connect(self.upstream_clients[up.name], up.host, up.port, self.mqtt.session_expiry_seconds)
        connect_persistent(self.community, self.community_mqtt)
        try:
            while not stop.is_set():
                self._check_publishers()
                self._process(self.intake.take(stop))
                flush_logs()  # the group's log lines in one write (relay/run.py batches them)
                self._housekeeping()
            self._drain()
        finally:
            self._stopping = True
            with contextlib.suppress(queue.Full):
                self._commits.put(None, timeout=5)
            self._committer.join(30)
            checkpoints_done.set()
            checkpointer.join(10)
            self.rooms.stop()
            for dest in self.destinations.values():
                dest.stop()
            for client in [self.community, *self.upstream_clients.values()]:
                client.disconnect()
                client.loop_stop()
            self.metrics.close()
        log.info("relay: stopped (%s)", self.stats)
        return self.stats

    def _checkpoint_loop(self, done: threading.Event) -> None:
        """Move SQLite's WAL into the database twice a second, off the commit path (see RelayStore)."""
        while not done.wait(0.5):
            try:
                self.store.checkpoint()
            except Exception:  # a busy database: the next round catches up
                log.debug("relay: WAL checkpoint skipped", exc_info=True)
        self.store.checkpoint()

    def _drain(self) -> None:
        """Graceful stop: record and acknowledge what is buffered, then let the outbox empty."""
        # No unsubscribe: that would end the persistent subscription. Later arrivals are left
        # unacknowledged with the broker instead.
        self._stopping = True
        self._process(self.intake.take(threading.Event()))
        if not wait_for(self._drained, self.config.drain_seconds, step=0.05):
            log.warning("relay: stopping with %d messages still in the outbox (sent on restart)", self.depth())

    def _drained(self) -> bool:
        self._process([])  # delete what the brokers acknowledged meanwhile
        self._commits.join()
        return self.depth() == 0

    def wait_connected(self, timeout: float) -> bool:
        """Whether the relay is connected and subscribed to the community broker within `timeout`."""
        return self._connected.wait(timeout)
