"""MQTT sessions on the community broker, shared by the collector and the relay."""

from __future__ import annotations

import struct

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kernel.mqtt_settings import MqttSettings
from transport.mqtt_socket import BufferedClient

PUBACK = 0x40  # MQTT control packet type 4; remaining length 2 = the packet id, reason "success"
_PUBACK = struct.Struct("!BBH")


PUBACK = 0x40  # MQTT control packet type 4; remaining length 2 = the packet id, reason "success"


_PUBACK = struct.Struct("!BBH")


def mqtt_client(config: MqttSettings, client_id: str, manual_ack: bool) -> BufferedClient:
    """A paho client for the community broker (callbacks API version 2)."""
    v5 = config.protocol == "5"
    client = BufferedClient(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else False,  # 3.1.1: a persistent session without expiry
        manual_ack=manual_ack,
    )
    if config.username:
        client.username_pw_set(config.username, config.password.get_secret_value() if config.password else None)
    if config.tls:
        client.tls_set()
    client.reconnect_delay_set(1, 30)
    return client


def connect_persistent(client: mqtt.Client, config: MqttSettings) -> None:
    """Connect in the background (retrying until the broker answers), resuming the session."""
    props = None
    if config.protocol == "5":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = config.session_expiry_seconds  # 0 would end the session on disconnect
        props.ReceiveMaximum = config.receive_maximum
    clean_start = False if props is not None else mqtt.MQTT_CLEAN_START_FIRST_ONLY
    client.connect_async(config.host, config.port, config.keepalive_seconds, clean_start=clean_start, properties=props)
    client.loop_start()


def acknowledge(client: mqtt.Client, mids: list[int]) -> None:
    """Acknowledge QoS 1 messages (PUBACK) in one write: paho's `ack` queues and writes one packet
    per message, which costs the network thread two system calls each at thousands a second."""
    queue = getattr(client, "_packet_queue", None)  # paho 2.x internals; fall back if they change
    if queue is None:
        for mid in mids:
            client.ack(mid, 1)
        return
    if mids:
        queue(PUBACK, b"".join(_PUBACK.pack(PUBACK, 2, mid) for mid in mids), 0, 0)
