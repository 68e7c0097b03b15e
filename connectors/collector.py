"""The MQTT collector behind `neuron collect`: subscribe, land durably, only then acknowledge.

Devices push telemetry and alarms; a message the broker has accepted must never be lost.
The collector holds a persistent MQTT session (a stable client id, clean_start=False,
session expiry > 0) subscribed with QoS 1, and acknowledges nothing by itself
(paho's manual acknowledgement): a message is acknowledged only after the micro-batch
holding it has been fsynced and renamed into the landing folder. Killed at any instant,
the collector leaves every unacknowledged message with the broker, which redelivers it
to the next run; what was landed but not yet acknowledged comes back flagged DUP and is
recognised by its msg_id (`RecentlyLanded`), acknowledged, and not landed twice.

Threads: paho's network thread only parses and buffers (`_on_message`); the caller's
thread lands a batch when it reaches `batch_max_messages` or is `batch_max_ms` old, then
acknowledges it, while the network thread keeps filling the next one.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import paho.mqtt.client as mqtt

from connectors import collector_landing as landing
from connectors.collector_progress import RecentlyLanded, write_watermark
from connectors.mqtt import REJECTS, hub_keys, identify, landing_root, route
from kernel.mqtt_settings import MqttSettings
from kernel.settings import Settings
from transport.mqtt import acknowledge, connect_persistent, mqtt_client

log = logging.getLogger(__name__)

# (stream, msg_id, topic, payload, received µs, problem, mid, qos, connection, DUP flag)
_Buffered = tuple[str, str, str, bytes, int, str | None, int, int, int, bool]


@dataclass
class CollectorStats:
    """What one run of the collector did (counts only: no topic or payload)."""

    received: int = 0
    landed: int = 0
    acknowledged: int = 0
    redeliveries_skipped: int = 0  # DUP messages already landed before: acknowledged, not landed twice
    unreadable: int = 0  # payloads that are not a JSON object with a msg_id (landed with a problem)
    unrouted: int = 0  # topics that belong to no stream (landed under _rejects)
    files: int = 0
    connects: int = 0
    by_stream: dict[str, int] = field(default_factory=dict)


class Collector:
    """One collector process's connection, buffer and landing loop."""

    def __init__(
        self, settings: Settings, config: MqttSettings | None = None, keys: landing.KeySource | None = None
    ) -> None:
        self.config = config or settings.mqtt
        self.keys = keys or hub_keys(settings)
        self.community_id = settings.community_id
        self.root = landing_root(settings)
        self.client_id = self.config.client_id or f"neuron-collector-{settings.community_id}"
        self.stats = CollectorStats()
        self._run_id = secrets.token_hex(4)
        self._batches = 0
        self._cond = threading.Condition()
        self._buffer: list[_Buffered] = []
        self._last_us = 0
        self._routes: dict[str, tuple[str, str | None]] = {}
        # Generation of the broker connection: a message id (mid) means something only on the
        # connection it arrived on, so acknowledgements for an older connection are dropped.
        self._connection = 0
        self._connection_lock = threading.Lock()
        self._connected = threading.Event()
        self._stopping = False
        self._landed = RecentlyLanded(self.config.redelivery_lookback_seconds)
        self._pruned = float("-inf")  # prune at start, then hourly
        self.client = mqtt_client(self.config, self.client_id, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # --- paho's network thread ----------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("collector: broker refused the connection (%s)", reason)
            return
        with self._connection_lock:
            self._connection += 1
        self.stats.connects += 1
        log.info("collector: connected (session present: %s)", bool(flags.session_present))
        client.subscribe(self.config.subscription(self.community_id), qos=1)
        self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._connection_lock:
            self._connection += 1
        self._connected.clear()
        if not self._stopping:
            log.warning("collector: disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        raw_topic: bytes = message._topic  # bytes: message.topic raises on invalid UTF-8
        topic = raw_topic.decode("utf-8", errors="replace")
        routed = self._routes.get(topic)
        if routed is None:
            routed = route(topic, self.config.topic_prefix, self.community_id)
            if len(self._routes) < 100_000:
                self._routes[topic] = routed
        stream, topic_problem = routed
        payload = bytes(message.payload)
        msg_id, problem = identify(raw_topic, payload)
        with self._cond:
            # Stamped under the lock, so the watermark never passes a message not yet buffered.
            now = self._last_us = max(time.time_ns() // 1000, self._last_us)
            problem = topic_problem or problem
            dup = bool(message.dup)
            self._buffer.append(
                (stream, msg_id, topic, payload, now, problem, message.mid, message.qos, self._connection, dup)
            )
            if len(self._buffer) >= self.config.batch_max_messages:
                self._cond.notify()

    # --- the landing thread -------------------------------------------------------------------

    def _take(self, stop: threading.Event) -> list[_Buffered]:
        """Wait until a batch is full, old enough, or the run stops; then take it."""
        limit, age = self.config.batch_max_messages, self.config.batch_max_ms / 1000
        with self._cond:
            idle_until = time.monotonic() + age  # when idle, still wake to move the watermark
            while not stop.is_set() and len(self._buffer) < limit:
                if self._buffer:
                    remaining = self._buffer[0][4] / 1_000_000 + age - time.time()
                else:
                    remaining = idle_until - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.25))  # wake now and then to notice `stop`
            taken, self._buffer = self._buffer, []
        return taken

    def _land_and_ack(self, batch: list[_Buffered]) -> None:
        rows: list[landing.LandedRow] = []
        in_batch: set[str] = set()
        for item in batch:
            # A redelivery (DUP) of a message landed before a crash or reconnect: acknowledge
            # it, do not land it twice. Batches are landed in order, so the first copy is known.
            if item[9] and (item[1] in self._landed or item[1] in in_batch):
                continue
            rows.append(item[:6])
            in_batch.add(item[1])
        if rows:
            self._batches += 1
            files = landing.land(self.keys, self.root, rows, f"{rows[0][4]:016d}-{self._run_id}-{self._batches:06d}")
            self.stats.files += len(files)
            self._landed.add(in_batch)
        with self._connection_lock:
            current = [item for item in batch if item[8] == self._connection]
            acknowledge(self.client, [item[6] for item in current if item[7] == 1])
            for item in current:
                if item[7] == 2:  # never asked for (we subscribe at QoS 1), but brokers may differ
                    self.client.ack(item[6], 2)
        self._count(batch, rows, sum(1 for item in current if item[7] > 0))

    def _count(self, batch: list[_Buffered], rows: list[Any], acked: int) -> None:
        s = self.stats
        s.received += len(batch)
        s.landed += len(rows)
        s.acknowledged += acked
        s.redeliveries_skipped += len(batch) - len(rows)
        for row in rows:
            s.by_stream[row[0]] = s.by_stream.get(row[0], 0) + 1
            if row[0] == REJECTS:
                s.unrouted += 1
            elif row[5] is not None:
                s.unreadable += 1

    def _watermark(self) -> None:
        with self._cond:
            # Everything received before the oldest unlanded message (or before now) is landed;
            # later messages are stamped at or after `through` (same lock, same clock).
            if self._buffer:
                through = self._buffer[0][4]
            else:
                through = self._last_us = max(time.time_ns() // 1000, self._last_us)
        write_watermark(self.root, through, self.client_id)
        if time.monotonic() - self._pruned > 3600:
            self._pruned = time.monotonic()
            landing.prune_windows(self.root, timedelta(hours=self.config.landing_retention_hours))

    def run(self, stop: threading.Event) -> CollectorStats:
        """Collect until `stop` is set; then land what is buffered, acknowledge it, disconnect."""
        removed = landing.remove_partial_files(self.root)
        recent = landing.recent_msg_ids(self.keys, self.root, self.config.redelivery_lookback_seconds)
        self._landed.add(recent)
        log.info("collector: starting (%d partial files removed, %d recent ids)", removed, len(recent))
        connect_persistent(self.client, self.config)
        try:
            while not stop.is_set():
                batch = self._take(stop)
                if batch:
                    self._land_and_ack(batch)
                self._watermark()
            self._land_and_ack(self._take(stop))
            self._watermark()
        finally:
            self._stopping = True
            self.client.disconnect()  # queued after the acknowledgements, so they go out first
            self.client.loop_stop()
        s = self.stats
        log.info(
            "collector: stopped (%d received, %d landed, %d redeliveries skipped)",
            s.received,
            s.landed,
            s.redeliveries_skipped,
        )
        return self.stats

    @property
    def buffered(self) -> int:
        """Messages received and not yet landed."""
        with self._cond:
            return len(self._buffer)

    def wait_connected(self, timeout: float) -> bool:
        """Whether the collector is connected and subscribed within `timeout` seconds."""
        return self._connected.wait(timeout)
