"""Alarm latency through the relay: device publish → district subscriber receipt, p50/p99, at
200 and 1,000 alarms/s, with the durable outbox (SQLite control DB, group commit), against
the bare broker round trip (publisher → subscriber on the same broker, no relay) in the same run.

Three private mosquitto brokers (community, district, police); the relay runs as its own
process (`python -m relay.run`, logging every state change as in production; with `shards=2`
two shard processes under it). The instruments are lean so that they do not take the CPU
they measure (bench/mqtt_probe.py): devices are a paced socket sending pre-encoded PUBLISH
packets, the district subscriber is `mosquitto_sub` stamping each arrival in C. Each alarm's
device time is unique, so the district's signed message is matched to the moment its device
alarm was published.

    .venv/bin/python -m bench relay_latency
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench.mqtt_probe import LeanPublisher, StampingSubscriber, publish_packet
from kernel.mqtt_settings import MqttSettings
from kernel.settings import REPO_ROOT, Settings
from simulator.community import Community
from simulator.devices import CST, DeviceFleet
from simulator.devices_broker import Broker

RATES = (200, 1000)
SECONDS = 8  # per rate and path
START = datetime(2026, 11, 20, 9, tzinfo=CST)
GOAL_P99_MS = 20.0
# (SQLite synchronous, relay processes, commit_max_ms): the default (natural batching), the
# lighter fsync policy, two shards, and the fixed 2 ms group window the relay used to wait out.
PATHS: tuple[tuple[str, int, float], ...] = (
    ("full", 1, 0.0),
    ("normal", 1, 0.0),
    ("full", 2, 0.0),
    ("normal", 2, 0.0),
    ("full", 1, 2.0),
)


def _path_name(synchronous: str, shards: int, window_ms: float = 0.0) -> str:
    return (
        f"relay, outbox fsync {synchronous}"
        + (f", {shards} shards" if shards > 1 else "")
        + (f", {window_ms:g} ms group window" if window_ms else "")
    )


def _payload_time(raw: bytes) -> str | None:
    """The device time of a relayed alarm (from the JWS payload) or of a bare one (plain JSON)."""
    import base64

    text = raw.decode()
    if text.startswith("{"):
        return str(json.loads(text)["event_time"])
    body = text.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["event_time"])


def _alarms(fleet: DeviceFleet, count: int, offset: int, first: int = 0) -> list[tuple[str, bytes, str]]:
    """(topic, payload, device time) of `count` alarms: in-home devices, fence zones and covers, each
    device raising and clearing in turn. `offset` keeps ids and times unique across runs; `first`
    continues the raise/clear alternation of earlier runs through the same relay."""
    devices = [*fleet.detectors, *fleet.wristbands, *fleet.fence, *fleet.covers]
    out = []
    for k in range(count):
        n = offset + k
        device = devices[(first + k) % len(devices)]
        round_ = (first + k) // len(devices)
        at = (START + timedelta(seconds=n)).isoformat()
        info = {key: v for key, v in device.info.items() if key not in ("resting_hr", "rated_w")}
        kind = {"home-safety": info.get("detector"), "wristband": "fall", "fence": "intrusion", "manhole": "open"}
        body = {
            "msg_id": f"bench-{n:08d}",
            "device_id": device.device_id,
            "event_time": at,
            **info,
            "alarm_type": kind[device.family],
            "severity": "critical" if device.family in ("home-safety", "wristband") else "major",
            "alarm_id": f"B{round_ // 2:06d}{device.device_id}",
            "alarm_state": "raised" if round_ % 2 == 0 else "cleared",
        }
        out.append((device.topic(fleet.community_id, "alarm"), json.dumps(body).encode(), at))
    return out


def _measure(
    publish_port: int, receive_port: int, topic_filter: str, alarms: list[tuple[str, bytes, str]], rate: int, work: Path
) -> tuple[dict[str, float], dict[str, float]]:
    """Publish `alarms` at `rate`/s and stamp their arrival on `topic_filter`: device time -> publish
    moment, and device time -> arrival (both wall clock)."""
    name = f"bench-{time.time_ns()}"
    receiver = StampingSubscriber(receive_port, topic_filter, name + "-sub", work / f"{name}.txt")
    prober = LeanPublisher(receive_port, name + "-probe")
    probe_topic = topic_filter.replace("#", "probe")
    try:
        receiver.wait_ready(lambda n: prober.sock.sendall(publish_packet(probe_topic, b"probe", n % 65535 + 1)))
        publisher = LeanPublisher(publish_port, name + "-devices")
        packets = [publish_packet(topic, body, i % 65535 + 1) for i, (topic, body, _) in enumerate(alarms)]
        moments = publisher.publish_at_rate(packets, rate)
        publisher.wait_acked(len(packets))
        publisher.close()
        sent = {at: moment for (_, _, at), moment in zip(alarms, moments, strict=True)}
        _wait(lambda: sum(1 for line in receiver.lines() if not line.endswith(b" probe")) >= len(sent), 90)
    finally:
        receiver.close()
        prober.close()
    arrived: dict[str, float] = {}
    for line in receiver.lines():
        stamp, _, payload = line.partition(b" ")
        key = _payload_time(payload) if payload != b"probe" else None
        if key is not None:
            arrived.setdefault(key, float(stamp))
    return sent, arrived


def _percentiles(sent: dict[str, float], arrived: dict[str, float]) -> dict[str, float]:
    lat = sorted((arrived[k] - t) * 1000 for k, t in sent.items() if k in arrived)
    if not lat:
        nan = float("nan")
        return {"p50": nan, "p99": nan, "p99_warm": nan, "max": nan, "received": 0, "sent": len(sent)}
    # After the first second: each path starts a fresh relay process, whose first second runs on
    # cold caches (device tokens, Python's own), as after any restart.
    first = min(sent.values()) + 1.0
    warm = sorted((arrived[k] - t) * 1000 for k, t in sent.items() if k in arrived and t >= first)
    return {
        "p50": statistics.median(lat),
        "p99": lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "p99_warm": warm[min(len(warm) - 1, int(0.99 * len(warm)))] if warm else float("nan"),
        "max": lat[-1],
        "received": len(lat),
        "sent": len(sent),
    }


def _wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _pem(public: Any) -> bytes:
    return bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _hub(home: Path, community: Broker, district: Broker, police: Broker) -> Settings:
    from api.consumers import register_consumer
    from kernel.relay_settings import RelaySettings, Upstream
    from privacy.keys import init_keys
    from warehouse.migrations import migrate
    from warehouse.recipients import register_encryption_key

    relay = RelaySettings(
        metrics_port=0,
        upstreams=[
            Upstream(name="district", port=district.port, tls=False),  # private loopback broker
            Upstream(
                name="public_security",
                port=police.port,
                tls=False,
                topic="police/{district}/{community}/alarm/{category}",
                location="unit",
                seal=["device_id", "household_id"],
            ),
        ],
    )
    hub = Settings(
        home=home, state_dir=Path("var"), control_db_url="", mqtt=MqttSettings(port=community.port), relay=relay
    )
    init_keys(hub)
    migrate(hub.control_url)
    for name in ("district", "public_security"):
        register_consumer(hub, name, _pem(Ed25519PrivateKey.generate().public_key()))
    register_encryption_key(hub, "public_security", _pem(X25519PrivateKey.generate().public_key()))
    return hub


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _relay_pids(pid: int) -> list[int]:
    """The relay's process and, with shards, its shard processes."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *(int(c) for c in children.read_text().split())] if children.exists() else [pid]


def _relay_cpu_seconds(pids: list[int]) -> float:
    return sum(_cpu_seconds(p) for p in pids if Path(f"/proc/{p}/stat").exists())


def _start_relay(
    hub: Settings, synchronous: str, log_path: Path, shards: int = 1, window_ms: float = 0.0
) -> subprocess.Popen[bytes]:
    update = {"sqlite_synchronous": synchronous, "shards": shards, "commit_max_ms": window_ms}
    env = {
        **os.environ,
        "NEURON_HOME": str(hub.home),
        "NEURON_STATE_DIR": "var",
        "NEURON_MQTT": hub.mqtt.model_dump_json(),
        "NEURON_RELAY": hub.relay.model_copy(update=update).model_dump_json(),
    }
    mark = log_path.read_text().count("subscribed to the community") if log_path.exists() else 0
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "relay.run"], cwd=REPO_ROOT, env=env, stderr=log)
    if not _wait(lambda: log_path.read_text().count("subscribed to the community") >= mark + shards, 60):
        raise RuntimeError("the relay did not start")
    return process


def run() -> dict[str, Any]:
    if not StampingSubscriber.available():
        raise RuntimeError("bench relay_latency needs mosquitto_sub (Debian package mosquitto-clients)")
    with tempfile.TemporaryDirectory(prefix="neuron-bench-relay-") as tmp:
        root = Path(tmp)
        brokers = [Broker(root / n).start() for n in ("community", "district", "police")]
        community, district, police = brokers
        try:
            hub = _hub(root / "hub", community, district, police)
            log_path = root / "relay.log"
            fleet = DeviceFleet(Community())
            results: dict[str, Any] = {"rows": []}
            offset, relayed = 0, 0
            for rate in RATES:
                count = rate * SECONDS
                # Baseline: the same alarms, publisher → subscriber on one broker, no relay.
                bare = [("bench/bare/" + t, body, at) for t, body, at in _alarms(fleet, count, offset)]
                sent, arrived = _measure(community.port, community.port, "bench/bare/#", bare, rate, root)
                results["rows"].append({"rate": rate, "path": "bare broker", **_percentiles(sent, arrived)})
                offset += count
                # The relay: community broker → relay (outbox committed) → district broker.
                for synchronous, shards, window_ms in PATHS:
                    process = _start_relay(hub, synchronous, log_path, shards, window_ms)
                    pids = _relay_pids(process.pid)
                    cpu_before = _relay_cpu_seconds(pids)
                    try:
                        alarms = _alarms(fleet, count, offset, first=relayed)
                        sent, arrived = _measure(community.port, district.port, "citybrain/#", alarms, rate, root)
                        cpu_ms = (_relay_cpu_seconds(pids) - cpu_before) * 1000 / count
                    finally:
                        process.send_signal(signal.SIGTERM)
                        process.wait(30)
                    path = _path_name(synchronous, shards, window_ms)
                    row = {"rate": rate, "path": path, "cpu_ms": cpu_ms, **_percentiles(sent, arrived)}
                    results["rows"].append(row)
                    offset += count
                    relayed += count
            results["log_lines"] = log_path.read_text().count("relay: alarm ")
            results["load_average"] = os.getloadavg()
            return results
        finally:
            for b in brokers:
                b.stop()


def report(result: dict[str, Any]) -> str:
    lines = [
        "Device publish → district subscriber receipt (QoS 1 both hops; the relay classifies, records the",
        "lifecycle, signs per consumer, seals the police's identifiers, commits the outbox, then acknowledges).",
        f"{SECONDS} s per rate and path; relay as its own process, logging every state change. `fsync full`: each",
        "group commit fsynced before the alarms are acknowledged (the default); `normal`: SQLite WAL with",
        "synchronous=NORMAL, durable against a kill -9 of the relay but not a power cut (`sqlite_synchronous`);",
        "`2 shards`: two relay processes splitting the devices by hash (`[relay] shards`). CPU: all relay processes.",
        "",
        "| alarms/s | path | p50 ms | p99 ms | p99 after 1 s | max ms | received / sent | relay CPU ms/alarm |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        figures = (
            f"{r['p50']:.2f} | {r['p99']:.2f} | {r['p99_warm']:.2f} | {r['max']:.2f} | {r['received']} / {r['sent']}"
        )
        cpu = f"{r['cpu_ms']:.2f}" if "cpu_ms" in r else ""
        lines.append(f"| {r['rate']} | {r['path']} | {figures} | {cpu} |")
    by = {(r["rate"], r["path"]): r for r in result["rows"]}
    load = result.get("load_average")
    if load:
        lines += [
            "",
            f"Load average at the end of the run (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, 2 cores.",
        ]
    lines.append("")
    for rate in RATES:
        bare = by[(rate, "bare broker")]
        for path in PATHS:
            relay = by.get((rate, _path_name(*path)))
            if relay is None:
                continue
            verdict = "met" if relay["p99"] < GOAL_P99_MS and relay["received"] == relay["sent"] else "NOT met"
            name = _path_name(*path).removeprefix("relay, outbox ")
            lines.append(
                f"- {rate}/s, {name}: relay p99 {relay['p99']:.1f} ms = {relay['p99'] / bare['p99']:.1f}× the "
                f"bare broker's {bare['p99']:.2f} ms; loss {relay['sent'] - relay['received']}"
                + (f"; goal (p99 < {GOAL_P99_MS:.0f} ms, no loss) {verdict}" if rate == 1000 else "")
            )
    top = max(RATES)
    natural, windowed = by.get((top, _path_name("full", 1))), by.get((top, _path_name("full", 1, 2.0)))
    if natural and windowed:
        lines += [
            "",
            f"Natural batching against a fixed group window, {top}/s, one process, fsync full: waiting 2 ms for",
            f"a group to fill gave p50 {windowed['p50']:.1f} ms and p99 {windowed['p99']:.1f} ms; taking at once what",
            "arrived while the worker was busy (`commit_max_ms = 0`, the default) gives "
            f"p50 {natural['p50']:.1f} ms and",
            f"p99 {natural['p99']:.1f} ms, for {natural['cpu_ms']:.2f} ms of CPU per alarm against "
            f"{windowed['cpu_ms']:.2f}.",
            "The window was paid by every alarm, and again by the alarms that queued behind a group while it",
            "waited; without it a group is exactly as large as the load made it while the last one was being",
            "recorded, so under load groups still grow (and commits stay few) by themselves. The relay's",
            "process also freezes its start-up heap (`gc.freeze`): a full cyclic collection under load walked",
            "~100,000 start-up objects and held the GIL 27-63 ms, the largest spikes left; now 6-9 ms.",
        ]
    if natural:
        lines += [
            "",
            f"At {top}/s one relay process spends {natural['cpu_ms']:.2f} ms of CPU per alarm, "
            f"{natural['cpu_ms'] * top / 1000:.2f} of a core. Most of",
            "the worker's share is building and signing two messages (Ed25519, ~55 µs a signature here), the",
            "contract checks and the lifecycle; then the SQLite group commit, and paho's network threads.",
            "Sealing a device's identifiers for the police costs ~0.14 ms a value, once: sealed values are kept",
            "across restarts (`relay_sealed`), and the 200/s paths have sealed every device of the fleet before",
            "the 1,000/s ones start. With two shards each process decodes every inbound alarm but does half of",
            "the rest, on its own core; the two then take turns at SQLite's one writer, so on this 2-core machine",
            "shards pay off only beyond what one process can carry. Where the CPU of the worker and its commits",
            "goes, repeatably: `bench relay_cpu`.",
        ]
    return "\n".join(lines)
