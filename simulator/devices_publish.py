"""The simulated devices on a real MQTT broker: publish a time range or a day, as fast as acknowledged.

Simulated time is compressed: messages go out in the order the devices would send them
(late and out-of-order ones where their faults put them), as fast as the broker
acknowledges them (QoS 1), or at `rate` messages per second. A message counts as
accepted once the broker has acknowledged it; those are what the collector must land.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from simulator.community import Community
from simulator.devices import CST, DeviceFleet, Message, hours
from simulator.devices_events import hour_messages
from simulator.devices_faults import LATE_HOURS, DeviceFaults, apply_faults

LOOKBACK = timedelta(hours=LATE_HOURS[1] + 3)  # late messages and long alarm clears of earlier hours
WINDOW = 1000  # unacknowledged publishes in flight


@dataclass
class PublishStats:
    """What was published and acknowledged: messages in order, duplicates included."""

    sent: list[Message] = field(default_factory=list)
    disconnects: int = 0
    seconds: float = 0.0
    truth: dict[str, list[str]] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return len(self.sent)

    def by_stream(self) -> dict[str, int]:
        return dict(Counter(m.stream for m in self.sent))

    def msg_ids(self, stream: str | None = None) -> set[str]:
        """The distinct msg_ids accepted (of one stream)."""
        return {m.msg_id for m in self.sent if stream is None or m.stream == stream}

    def faults(self) -> dict[str, str]:
        """msg_id -> injected fault, for every faulty message accepted."""
        return {m.msg_id: m.fault for m in self.sent if m.fault}


def messages_between(
    fleet: DeviceFleet, start: datetime, end: datetime, faults: DeviceFaults | None = None
) -> list[Message]:
    """The messages devices send in [start, end), in sending order: a range is the union of its hours."""
    faults = faults if faults is not None else DeviceFaults()
    out: list[Message] = []
    for hour in hours(start - LOOKBACK, end):
        out += apply_faults(fleet, hour, hour_messages(fleet, hour), faults)
    chosen = [m for m in out if start <= m.publish_at < end]
    chosen.sort(key=lambda m: (m.publish_at, m.msg_id))
    return chosen


class _Publisher:
    """A paho client that knows whether it is connected."""

    def __init__(self, host: str, port: int, protocol: str, client_id: str) -> None:
        v5 = protocol == "5"
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        )
        self.client.max_inflight_messages_set(WINDOW)
        self.client.reconnect_delay_set(1, 2)
        self.connected = threading.Event()
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()

    def wait_connected(self, timeout: float) -> None:
        if not self.connected.wait(timeout):
            raise TimeoutError("the simulated devices could not connect to the broker")

    def drop_connection(self, timeout: float) -> None:
        """Lose the connection without a DISCONNECT (as a device gateway does) and reconnect."""
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            self.connected.clear()
            # shutdown, not close: paho's network thread may be inside select() on this socket.
            sock.shutdown(socket.SHUT_RDWR)
        self.wait_connected(timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_messages(
    host: str,
    port: int,
    messages: list[Message],
    *,
    protocol: str = "5",
    disconnect_every: int = 0,
    rate: float | None = None,
    timeout: float = 120.0,
    client_id: str = "simulated-devices",
) -> PublishStats:
    """Publish at QoS 1 and wait until the broker acknowledged every message."""
    stats = PublishStats()
    pub = _Publisher(host, port, protocol, client_id)
    started = time.monotonic()
    try:
        pub.wait_connected(timeout)
        pending: list[tuple[Message, Any]] = []
        for n, m in enumerate(messages, start=1):
            if rate:
                time.sleep(max(0.0, started + n / rate - time.monotonic()))
            pending.append((m, pub.client.publish(m.topic, m.body(), qos=1)))
            if len(pending) >= WINDOW or (disconnect_every and n % disconnect_every == 0):
                stats.sent += _settle(pending, timeout)
                pending = []
            if disconnect_every and n % disconnect_every == 0:
                pub.drop_connection(timeout)
                stats.disconnects += 1
        stats.sent += _settle(pending, timeout)
    finally:
        pub.close()
    stats.seconds = time.monotonic() - started
    return stats


def _settle(pending: list[tuple[Message, Any]], timeout: float) -> list[Message]:
    for _, info in pending:
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise TimeoutError("the broker did not acknowledge a simulated message in time")
    return [m for m, _ in pending]


def publish_range(
    host: str,
    port: int,
    start: datetime,
    end: datetime,
    community: Community | None = None,
    faults: DeviceFaults | None = None,
    **options: Any,
) -> PublishStats:
    """Publish what a community's devices send in [start, end); returns what was accepted."""
    fleet = DeviceFleet(community or Community())
    faults = faults if faults is not None else DeviceFaults()
    messages = messages_between(fleet, start, end, faults)
    options.setdefault("client_id", f"simulated-devices-{fleet.community_id}")
    stats = publish_messages(host, port, messages, disconnect_every=faults.disconnect_every, **options)
    stats.truth = fleet.ground_truth()
    return stats


def publish_day(
    host: str,
    port: int,
    day: date,
    community: Community | None = None,
    faults: DeviceFaults | None = None,
    **options: Any,
) -> PublishStats:
    """Publish one local (Shanghai) day of a community's devices."""
    start = datetime.combine(day, day_time(), CST)
    return publish_range(host, port, start, start + timedelta(days=1), community, faults, **options)


def write_device_truth(stats: PublishStats, path: Path) -> None:
    """Write the identifiers the devices could send and the faults injected (mode 0600)."""
    payload = {**stats.truth, "fault_log": dict(sorted(stats.faults().items()))}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.chmod(0o600)  # household and resident ids are personal data, even simulated
    os.replace(tmp, path)
