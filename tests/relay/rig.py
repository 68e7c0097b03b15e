"""A private relay rig: three mosquitto brokers (community, district, police) on free ports, a
hub whose relay points at them, consumers that collect what arrives, and device alarms."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from api.consumers import register_consumer
from kernel.mqtt_settings import MqttSettings
from kernel.relay_settings import RelaySettings, Upstream
from kernel.settings import Settings
from privacy.keys import b64u, init_keys
from simulator.community import Community
from simulator.devices import CST, Device, DeviceFleet, Message
from simulator.devices_broker import Broker, free_port
from tests.conftest import make_settings
from tests.leaks import jws_payloads
from warehouse.migrations import migrate
from warehouse.recipients import register_encryption_key

DISTRICT_TOPIC = "citybrain/putuo/music-square/alarm/#"
POLICE_TOPIC = "police/putuo/music-square/alarm/#"
START = datetime(2026, 11, 20, 9, tzinfo=CST)


class Consumer:
    """A consumer's subscriber on its own broker: a persistent session that keeps every message."""

    def __init__(
        self, broker: Broker, topic: str, client_id: str, key: tuple[str, Ed25519PrivateKey] | None = None
    ) -> None:
        self.topic = topic
        self.key = key  # (key id, private key) registered for this consumer: it signs acknowledgements
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.connected.set()  # subscribed: nothing published later is lost
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect_async(broker.host, broker.port, 30, clean_start=False, properties=props)
        self.client.loop_start()
        assert self.connected.wait(15), "consumer could not connect"

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def payloads(self) -> list[dict[str, Any]]:
        """Every received message's signed payload, decoded (not verified: see the tests that verify)."""
        with self._lock:
            raw = [m for _, m in self.messages]
        return [json.loads(jws_payloads(m.decode())[0]) for m in raw]

    def event_ids(self) -> list[str]:
        return [p["event_id"] for p in self.payloads()]

    def acknowledge(self, alarm_id: str, ack_topic: str, body: bytes | None = None) -> None:
        """Acknowledge as the consumer's platform does: a JWS by its registered key (or `body` as given)."""
        if body is None:
            assert self.key is not None, "this consumer has no registered key to sign with"
            body = signed_ack(alarm_id, *self.key).encode()
        self.client.publish(ack_topic.format(alarm_id=alarm_id), body, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def signed_ack(
    alarm_id: str, key_id: str, key: Ed25519PrivateKey, iat: float | None = None, jti: str | None = None
) -> str:
    """A consumer's acknowledgement: a compact JWS (Ed25519) over {"alarm_id", "iat", "jti"}."""
    header = b64u(json.dumps({"alg": "Ed25519", "kid": key_id}).encode())
    claims = {"alarm_id": alarm_id, "iat": int(time.time()) if iat is None else iat, "jti": jti or uuid.uuid4().hex}
    body = b64u(json.dumps(claims).encode())
    return f"{header}.{body}.{b64u(key.sign(f'{header}.{body}'.encode()))}"


@dataclass
class Rig:
    """The hub, its three brokers, and the simulated community's devices."""

    hub: Settings
    community: Broker
    district: Broker
    police: Broker
    fleet: DeviceFleet
    police_key: X25519PrivateKey
    signing_keys: dict[str, tuple[str, Ed25519PrivateKey]] = field(default_factory=dict)  # consumer -> key
    consumers: list[Consumer] = field(default_factory=list)

    def consumer(self, which: str) -> Consumer:
        broker, topic = (self.district, DISTRICT_TOPIC) if which == "district" else (self.police, POLICE_TOPIC)
        key = self.signing_keys.get("district" if which == "district" else "public_security")
        c = Consumer(broker, topic, f"test-{which}-{len(self.consumers)}", key)
        self.consumers.append(c)
        return c


def relay_config(district: Broker, police: Broker, **overrides: Any) -> RelaySettings:
    values: dict[str, Any] = {
        "metrics_port": 0,
        "drain_seconds": 5,
        "upstreams": [
            Upstream(name="district", port=district.port, tls=False),  # private loopback broker
            Upstream(
                name="public_security",
                port=police.port,
                tls=False,
                topic="police/{district}/{community}/alarm/{category}",
                ack_topic="police/{district}/{community}/alarm-ack/+",
                location="unit",
                seal=["device_id", "household_id", "room_no"],
            ),
        ],
        **overrides,
    }
    return RelaySettings(**values)


def _pem(public: Any) -> bytes:
    return bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


@contextmanager
def relay_rig(tmp: Path, **relay_overrides: Any) -> Iterator[Rig]:
    """Three private brokers and an initialised hub wired to them (consumers registered)."""
    brokers = [Broker(tmp / name) for name in ("community", "district", "police")]
    if brokers[0].kind != "mosquitto":
        pytest.skip("the relay tests need mosquitto (persistent MQTT 5 sessions)")
    for b in brokers:
        b.start()
    try:
        community, district, police = brokers
        config = relay_config(district, police, **relay_overrides)
        hub = make_settings(tmp / "hub", mqtt=MqttSettings(port=community.port), relay=config)
        init_keys(hub)
        migrate(hub.control_url)
        police_key = X25519PrivateKey.generate()
        signing_keys = {}
        for name in ("district", "public_security"):
            key = Ed25519PrivateKey.generate()
            signing_keys[name] = (register_consumer(hub, name, _pem(key.public_key())), key)
        register_encryption_key(hub, "public_security", _pem(police_key.public_key()))
        fleet = DeviceFleet(Community(seed=3, households_count=150))
        rig = Rig(hub, community, district, police, fleet, police_key, signing_keys)
        yield rig
        for c in rig.consumers:
            c.close()
    finally:
        for b in brokers:
            b.stop()


def alarm(
    fleet: DeviceFleet, device: Device, n: int, state: str, at: datetime, alarm_type: str | None = None, **extra: Any
) -> Message:
    """A device alarm as the simulator's devices send it (`simulator/devices_events.py`)."""
    info = {k: v for k, v in device.info.items() if k != "resting_hr" and k != "rated_w"}
    kind = (
        alarm_type
        or {
            "home-safety": str(device.info.get("detector")),
            "wristband": "fall",
            "fence": "intrusion",
            "manhole": "open",
        }[device.family]
    )
    msg_id = f"{device.device_id}-{n:06d}-{state}"
    payload = {
        "msg_id": msg_id,
        "device_id": device.device_id,
        "event_time": at.isoformat(),
        **info,
        "alarm_type": kind,
        "severity": "critical" if device.family in ("home-safety", "wristband") else "major",
        "alarm_id": f"A{device.device_id}{n:06d}",
        "alarm_state": state,
        **extra,
    }
    return Message(at, device.stream, device.topic(fleet.community_id, "alarm"), msg_id, payload)


def alarm_load(fleet: DeviceFleet, count: int, devices: list[Device] | None = None) -> list[Message]:
    """`count` alarm messages cycling over devices, each device alternating raise and clear."""
    devices = devices or [*fleet.detectors[:40], *fleet.wristbands[:20], *fleet.fence, *fleet.covers]
    out: list[Message] = []
    n = 0
    while len(out) < count:
        for i, device in enumerate(devices):
            if len(out) >= count:
                break
            state = "raised" if n % 2 == 0 else "cleared"
            # Cleared after an hour by the device's clock: past the flap window, so each raise is a new alarm.
            out.append(alarm(fleet, device, n // 2, state, START + timedelta(hours=n, seconds=i)))
        n += 1
    return out


def in_order(payloads: list[dict[str, Any]]) -> bool:
    """Whether first copies arrived in order: each alarm's events by seq, each device's by its clock.

    The device is known where the consumer may know it (a public id, or a deterministic sealed
    id); at-least-once delivery may repeat a message, so repeats are skipped.
    """
    last_seq: dict[str, int] = {}
    last_time: dict[str, datetime] = {}
    seen: set[str] = set()
    for p in payloads:
        if p["event_id"] in seen:
            continue
        seen.add(p["event_id"])
        if p["seq"] <= last_seq.get(p["alarm_id"], 0):
            return False
        last_seq[p["alarm_id"]] = p["seq"]
        device = p.get("device_id") or p.get("sealed", {}).get("device_id")
        if device and p["state"] in ("raised", "updated", "cleared"):
            at = datetime.fromisoformat(p["event_time"])
            if at < last_time.get(device, at):
                return False
            last_time[device] = at
    return True


__all__ = ["free_port"]
