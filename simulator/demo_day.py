"""The machinery of `neuron demo`'s batch day: the consumers' brokers, the hub's config for the
simulated community, the collector and relay for the day, the device day, and the windows.

- The district's and the police's brokers are the simulator's private brokers (a mosquitto
  of our own, or the embedded one); a watcher on each keeps every alarm message that arrives
  in `<home>/upstream/<consumer>.ndjson`, as the consumer's platform would receive it.
- The hub reads the simulated systems through a `hub.toml` the demo writes (the same file
  `neuron up` then reads): vendor APIs, platform DB, door drop folder, community broker,
  and the relay's two upstreams (plain MQTT on loopback: no network to protect there).
- The collector and the relay run as the product's own commands (`neuron collect`,
  `neuron relay`) while the devices publish a whole simulated day at full speed; the MQTT
  streams and the relay's lifecycle table are windowed by when the hub received them, so
  their one window ends at the first whole minute after everything landed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors.registry import STREAMS
from neuron.airflow_runner import Group
from simulator.demo_peers import DemoPeers
from simulator.devices_broker import Broker
from simulator.live import LiveCommunity

# Streams read by what their source updated in the simulated day (vendor APIs, the platform
# DB, the door export): one daily window. The others (MQTT landing, the relay's records) are
# read by when the hub received them: one window ending just after the device day landed.
DAY_FAMILIES = {"parking_api", "intercom_api", "door_access_drop", "platform_sql"}
DAY_CADENCE = "0 0 * * *"
UPSTREAMS = {
    "district": "citybrain/{district}/{community}/alarm/#",
    "public_security": "police/{district}/{community}/alarm/#",
}


def day_streams() -> list[str]:
    return [name for name, spec in STREAMS.items() if spec.family in DAY_FAMILIES]


def received_streams() -> list[str]:
    return [name for name, spec in STREAMS.items() if spec.family not in DAY_FAMILIES]


def day_group(day: date, tz: str) -> Group:
    """The day streams' windows: one daily window each, the simulated day."""
    return Group(
        DAY_CADENCE, day_streams(), [datetime.combine(day + timedelta(days=1), datetime.min.time(), ZoneInfo(tz))]
    )


def received_group(received_end: datetime, tz: str) -> Group:
    """The received streams' windows: the 24 h up to `received_end` (a whole local minute),
    as a daily cron at that minute makes a manual run's data interval."""
    local = received_end.astimezone(ZoneInfo(tz))
    return Group(f"{local.minute} {local.hour} * * *", received_streams(), [local])


def next_minute(after: datetime) -> datetime:
    """The first whole minute after `after`."""
    return after.replace(second=0, microsecond=0) + timedelta(minutes=1)


class Watcher:
    """A consumer's subscriber on its broker (a persistent session): every alarm message is
    appended, as received, to a file."""

    def __init__(self, broker: Broker, topic: str, path: Path, client_id: str) -> None:
        import paho.mqtt.client as mqtt

        self.path, self.count = path, 0
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect_async(broker.host, broker.port, 30, clean_start=False)  # type: ignore[arg-type]
        self.client.loop_start()
        if not subscribed.wait(15):
            raise RuntimeError(f"could not subscribe to the {path.stem} broker")

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        line = json.dumps({"topic": message.topic, "message": bytes(message.payload).decode("utf-8", "replace")})
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            self.count += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        with self._lock:
            self._file.close()


@dataclass
class Upstream:
    name: str
    broker: Broker
    topic: str
    watcher: Watcher


@contextmanager
def upstream_brokers(home: Path, district: str, community: str) -> Iterator[dict[str, Upstream]]:
    """The district's and the police's brokers, each with a watcher keeping what arrives."""
    folder = home / "upstream"
    folder.mkdir(parents=True, exist_ok=True)
    started: dict[str, Upstream] = {}
    try:
        for name, pattern in UPSTREAMS.items():
            broker = Broker(folder / f"{name}-broker").start()
            topic = pattern.format(district=district, community=community)
            watcher = Watcher(broker, topic, folder / f"{name}.ndjson", f"demo-{name}-platform")
            started[name] = Upstream(name, broker, topic, watcher)
        yield started
    finally:
        for up in started.values():
            up.watcher.close()
            up.broker.stop()


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def write_hub_toml(
    path: Path,
    live: LiveCommunity,
    upstreams: dict[str, Upstream],
    tokens: dict[str, str],
    peers: DemoPeers | None = None,
) -> Path:
    """The hub's configuration for the simulated community (0600: it holds the vendors' tokens);
    with `peers`, the GA/T 1400 cascade (`[viid]`) and the carrier inbox (`[inbox]`) too."""
    site = live.sites[0]
    tables: list[tuple[str, dict[str, Any]]] = [
        ("parking", {"base_url": live.urls["parking"], "token": tokens["parking"]}),
        ("intercom", {"base_url": live.urls["intercom"], "token": tokens["intercom"], "page_size": 500}),
        ("platform", {"url": live.platform_url}),
        ("door_access", {"folder": str(site.drop)}),
        ("mqtt", {"port": live.broker.port, "protocol": live.broker.protocol, "batch_max_ms": 1000}),
        ("relay", {"metrics_port": 0, "drain_seconds": 5}),
    ]
    police = {
        "topic": "police/{district}/{community}/alarm/{category}",
        "ack_topic": "police/{district}/{community}/alarm-ack/+",
        "location": "unit",
        "seal": ["device_id", "household_id", "room_no"],
    }
    lines = ["# Written by `neuron demo`: the hub wired to the simulated Music Square.", ""]
    for table, values in tables:
        lines += [f"[{table}]", *(f"{k} = {_toml(v)}" for k, v in values.items()), ""]
    for name, up in upstreams.items():
        # Plain MQTT: the consumers' brokers are private ones on this machine's loopback.
        values = {"name": name, "port": up.broker.port, "tls": False, **(police if name == "public_security" else {})}
        lines += ["[[relay.upstreams]]", *(f"{k} = {_toml(v)}" for k, v in values.items()), ""]
    if live.ngsi_ld_url:
        # The city brain's context broker: the district's feeds as NGSI-LD entities and its
        # alarms as Alert entities, pushed by `neuron push` (started by `neuron up`).
        lines += ["[[push.ngsi_ld]]", 'name = "district"', f"broker_url = {_toml(live.ngsi_ld_url)}", ""]
    if peers is not None:
        lines += peers.hub_toml_lines()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


class HubProcess:
    """One of the hub's own commands (`neuron collect`, `neuron relay`) in the background,
    its output kept in the hub's log folder."""

    def __init__(self, command: str, env: dict[str, str], log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.command = command
        self._log = open(log_dir / f"{command}-batch-day.log", "w", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "neuron.cli", command], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        """SIGTERM (the collector lands and the relay drains what it holds), then wait."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def publish_device_day(live: LiveCommunity, day: date) -> int:
    """Every device message of the simulated day, as fast as the broker takes them (QoS 1)."""
    from simulator.devices import CST
    from simulator.devices_faults import DeviceFaults
    from simulator.devices_publish import messages_between, publish_messages

    start = datetime.combine(day, datetime.min.time(), CST)
    faults = DeviceFaults()
    messages = sorted(
        (m for fleet in live.fleets for m in messages_between(fleet, start, start + timedelta(days=1), faults)),
        key=lambda m: m.publish_at,
    )
    stats = publish_messages(
        live.broker.host,
        live.broker.port,
        messages,
        protocol=live.broker.protocol,
        disconnect_every=faults.disconnect_every,
        client_id="simulated-devices-day",
    )
    return stats.accepted


def wait_landed(root: Path, after: datetime, timeout: float = 120.0) -> bool:
    """Whether the collector's watermark passed `after` within `timeout` seconds."""
    from connectors.collector_progress import landed_through

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        through = landed_through(root)
        if through is not None and through > after:
            return True
        time.sleep(0.5)
    return False
