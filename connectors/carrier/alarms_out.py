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

import paho.mqtt.client as mqtt

from connectors.carrier.store import InboxFiles, Sealer, connect, transaction
from connectors.collector_settings import MqttSettings

log = logging.getLogger(__name__)


class AlarmPublisher:
    """Publishes the outbox in order with QoS 1, deleting each alarm once the broker has it."""

    def __init__(
        self, files: InboxFiles, sealer: Sealer, mqtt_config: MqttSettings, client_id: str, ready: threading.Event
    ) -> None:
        self.sealer, self.config, self.ready = sealer, mqtt_config, ready
        self.conn = connect(files.state_path, files.synchronous)
        self.published = 0
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if mqtt_config.protocol == "5" else mqtt.MQTTv311,
        )
        if mqtt_config.username:
            password = mqtt_config.password.get_secret_value() if mqtt_config.password else None
            self.client.username_pw_set(mqtt_config.username, password)
        if mqtt_config.tls:
            self.client.tls_set()
        self.client.reconnect_delay_set(1, 30)
        self._connected = threading.Event()
        self.client.on_connect = lambda c, u, f, reason, p: None if reason.is_failure else self._connected.set()
        self.client.on_disconnect = lambda *_: self._connected.clear()

    def run(self, stop: threading.Event) -> None:
        self.client.connect_async(self.config.host, self.config.port, self.config.keepalive_seconds)
        self.client.loop_start()
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
