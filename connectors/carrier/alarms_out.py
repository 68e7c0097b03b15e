"""Alarms from the inbox onto the community broker, where the relay takes them like any device's.

The relay consumes `{prefix}/{community}/{family}/{device}/alarm` (QoS 1) and the collector lands the
same topics, so an NB-IoT detector's alarm, published there in the device contract's shape, is
relayed, acknowledged and kept exactly as an MQTT detector's would be: no second path into the relay.
The outbox is in the inbox's SQLite file; an alarm leaves it only after the broker's PUBACK, so a
broker outage delays alarms and loses none (at least once: the relay recognises a re-published
alarm by its topic and msg_id). The broker's ACL must let the inbox's client id publish on the
home-safety and manhole alarm topics.
"""

from __future__ import annotations

import json
import logging
import threading

from connectors.carrier.store import InboxFiles, Sealer, connect, transaction
from kernel.mqtt_settings import MqttSettings
from transport.mqtt import connect_persistent, mqtt_client

log = logging.getLogger(__name__)


class AlarmPublisher:
    """Publishes the outbox in order with QoS 1, deleting each alarm once the broker has it."""

    def __init__(
        self, files: InboxFiles, sealer: Sealer, mqtt_config: MqttSettings, client_id: str, ready: threading.Event
    ) -> None:
        self.sealer, self.config, self.ready = sealer, mqtt_config, ready
        self.conn = connect(files.state_path, files.synchronous)
        self.published = 0
        self.client = mqtt_client(mqtt_config, client_id, manual_ack=False)  # the collector's and relay's client
        self._connected = threading.Event()
        self.client.on_connect = lambda c, u, f, reason, p: None if reason.is_failure else self._connected.set()
        self.client.on_disconnect = lambda *_: self._connected.clear()

    def run(self, stop: threading.Event) -> None:
        connect_persistent(self.client, self.config)  # retries until the broker answers
        try:
            while not stop.is_set():
                if not self._connected.wait(0.5):
                    continue
                if not self.drain():
                    self.ready.wait(0.5)
                    self.ready.clear()
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            self.conn.close()

    def drain(self, limit: int = 200) -> int:
        """Publish up to `limit` alarms and wait for their PUBACKs; returns how many left the outbox."""
        rows = self.conn.execute("SELECT id, sealed FROM outbox ORDER BY id LIMIT ?", (limit,)).fetchall()
        sent = []
        for row_id, sealed in rows:
            topic, payload = json.loads(self.sealer.open("outbox", sealed))
            sent.append((row_id, self.client.publish(topic, payload.encode(), qos=1)))
        done = []
        for row_id, info in sent:
            try:
                info.wait_for_publish(timeout=10)
            except (RuntimeError, ValueError):
                break  # disconnected: the rest stays in the outbox for the next connection
            if not info.is_published():
                break
            done.append(row_id)
        if done:
            with transaction(self.conn) as c:
                c.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in done])
            self.published += len(done)
        return len(done)
